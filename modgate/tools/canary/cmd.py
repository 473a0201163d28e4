"""`modgate canary report`: should a service's canary be promoted, held or rolled back?

    modgate canary report --service text --since 2h
    modgate canary report --service text --metrics-url http://gw-1:9464 --metrics-url http://gw-2:9464 \\
        --rules rules.yaml --json report.json

Compares the canary with the stable variant over the stored verdicts (flag rate per category,
decision mix, latency; modgate/tools/canary/collect.py) and, with --metrics-url, the gateways'
counters (error rate per variant, shadow disagreement; scrape.py), then decides by the rules
(rules.yaml in this package unless --rules; decide.py).

Exit status, for CD pipelines: 0 PROMOTE, 1 HOLD, 2 ROLLBACK; 3 when no decision could be made
(the store, a metrics endpoint or the rules file cannot be used, or bad usage).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import NoReturn

from modgate.tools.store_args import SINCE_HELP, StoreProblem, add_store_url, open_store, since_arg

NAME = "modgate canary report"
EXIT_UNDECIDED = 3


class _Parser(argparse.ArgumentParser):
    """Usage errors exit 3, not argparse's 2: 2 means ROLLBACK to a pipeline."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(EXIT_UNDECIDED, f"{self.prog}: error: {message}\n")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from modgate.tools.canary.collect import SERVICES

    sub = parser.add_subparsers(dest="action", required=True, metavar="{report}", parser_class=_Parser)
    report = sub.add_parser(
        "report",
        help="compare a service's canary with stable and decide PROMOTE / HOLD / ROLLBACK",
        description="Compare a service's canary with its stable variant over the stored verdicts "
        "(and the gateways' metrics) and decide by the rules. Exit 0 PROMOTE, 1 HOLD, 2 ROLLBACK, "
        "3 no decision.",
    )
    report.add_argument("--service", choices=SERVICES, default="text", help="the service (default text)")
    report.add_argument("--since", type=since_arg, metavar="T", help=SINCE_HELP)
    report.add_argument("--until", type=since_arg, metavar="T", help="only verdicts decided at or before T")
    report.add_argument(
        "--metrics-url",
        action="append",
        default=[],
        metavar="URL",
        help="a gateway's metrics endpoint (http://HOST:PORT[/metrics]); repeat for every gateway: "
        "error rates and shadow disagreement come from there (counted since each gateway started)",
    )
    report.add_argument(
        "--exclude-caller",
        action="append",
        default=[],
        metavar="NAME",
        help="leave out this caller's verdicts (an evaluation caller's, whose pinned variant is no "
        "canary sample); repeatable",
    )
    report.add_argument(
        "--rules", type=Path, metavar="FILE", help="the rules YAML (default: the packaged rules.yaml)"
    )
    report.add_argument(
        "--json", type=Path, metavar="OUT", help="also write the report as JSON to OUT ('-': stdout)"
    )
    add_store_url(report)
    report.add_argument("--store", dest="store_url", metavar="URL", help=argparse.SUPPRESS)


def run(args: argparse.Namespace) -> int:
    from modgate.store import StoreUnavailable
    from modgate.tools.canary.collect import collect
    from modgate.tools.canary.decide import decide
    from modgate.tools.canary.report import format_report, report_json
    from modgate.tools.canary.rules import RulesError, load_rules
    from modgate.tools.canary.scrape import MetricsProblem, scrape

    try:
        rules = load_rules(args.rules)
        metrics = scrape(args.metrics_url, args.service) if args.metrics_url else None
        store = open_store(args.store_url)
    except (RulesError, MetricsProblem, StoreProblem) as exc:
        return _undecided(str(exc))
    try:
        figures = collect(
            store,
            args.service,
            since=args.since,
            until=args.until,
            exclude_callers=frozenset(args.exclude_caller),
        )
    except StoreUnavailable as exc:
        return _undecided(f"{exc}; try again once the store is back")
    finally:
        store.close()
    outcome = decide(figures, metrics, rules)
    if args.json is not None:
        text = json.dumps(report_json(figures, metrics, outcome), indent=2)
        if str(args.json) == "-":
            print(text)
        else:
            args.json.write_text(text + "\n", encoding="utf-8")
    print(format_report(figures, metrics, outcome), file=sys.stderr if str(args.json) == "-" else sys.stdout)
    return outcome.exit_code


def _undecided(message: str) -> int:
    print(f"{NAME}: {message} (exit {EXIT_UNDECIDED}: no decision)", file=sys.stderr)
    return EXIT_UNDECIDED
