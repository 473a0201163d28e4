"""Training the text service's per-category scorer: ``python -m services.text.train``.

data.py (the labelled sentences in data/, their fixed split) -> features (the service's own
encoder and text view) -> fit.py (logistic regression per category, L2 chosen on dev, Platt
scaling on dev) -> an artifact (services/text/scorer.py) + a report of the dev and test figures
(evaluate.py, through the service's whole pipeline: per-sentence scoring, lexicons, thresholds).
"""
