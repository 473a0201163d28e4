"""`modgate canary report`: promote, hold or roll back a service's canary.

- rules.py / rules.yaml  the thresholds (typed; the packaged defaults, Helm mirrors them)
- collect.py             per-variant figures from the verdict store
- scrape.py              error rates and shadow disagreement from the gateways' /metrics
- stats.py               Wilson and Newcombe intervals, percentiles
- decide.py              the checks and the decision (exit 0 / 1 / 2)
- report.py              the printed table and the JSON
- cmd.py                 the subcommand
"""
