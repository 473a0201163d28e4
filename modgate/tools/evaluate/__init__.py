"""`modgate eval`: a labelled set through the gateway -> precision/recall per category, the
confusion matrix, which modality decided, latency; variant comparison with bootstrap intervals;
threshold suggestions written as a policy diff. Reads verdicts, never calls a model itself."""
