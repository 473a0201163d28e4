"""The gateways' own counters, read from their /metrics endpoints: what the store cannot say.

A failed model call leaves no stored verdict, and a shadow's result is never stored, so the
error rate per variant and the shadow disagreement come from the gateway metrics
(gateway/metrics.py), parsed with prometheus_client's text parser and summed over every
gateway given. Counters count since each gateway process started: --since/--until do not
apply to them.

Error rate of a variant = failed calls / calls, a call being one service request with its
retries: failed calls are modgate_gateway_upstream_errors (once per failed call, any kind),
successful ones modgate_gateway_upstream_calls{outcome="ok"} (attempts; only the last attempt
of a call can be ok).
"""

from __future__ import annotations

import urllib.error
import urllib.request
from collections import defaultdict
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from prometheus_client.parser import text_string_to_metric_families

CALLS = "modgate_gateway_upstream_calls_total"
ERRORS = "modgate_gateway_upstream_errors_total"
SHADOWS = "modgate_gateway_shadow_requests_total"


class MetricsProblem(RuntimeError):
    """A metrics endpoint that could not be read or parsed; the message names it."""


@dataclass
class MetricFigures:
    sources: list[str] = field(default_factory=list)
    ok_calls: dict[str, float] = field(default_factory=lambda: defaultdict(float))  # variant -> calls
    failed_calls: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    shadows: dict[str, float] = field(default_factory=lambda: defaultdict(float))  # outcome -> count

    def calls(self, variant: str) -> int:
        return round(self.ok_calls.get(variant, 0.0) + self.failed_calls.get(variant, 0.0))

    def failures(self, variant: str) -> int:
        return round(self.failed_calls.get(variant, 0.0))

    @property
    def shadow_compared(self) -> int:
        return round(self.shadows.get("agree", 0.0) + self.shadows.get("disagree", 0.0))

    @property
    def shadow_disagreed(self) -> int:
        return round(self.shadows.get("disagree", 0.0))


def parse_metrics(text: str, service: str, figures: MetricFigures | None = None) -> MetricFigures:
    """Add one exposition's counters of `service` to `figures` (a new one when None)."""
    figures = MetricFigures() if figures is None else figures
    try:
        families = list(text_string_to_metric_families(text))
    except ValueError as exc:
        raise MetricsProblem(f"not the Prometheus text format: {exc}") from None
    for family in families:
        for sample in family.samples:
            labels = sample.labels
            if labels.get("service") != service:
                continue
            if sample.name == CALLS and labels.get("outcome") == "ok":
                figures.ok_calls[labels.get("variant", "stable")] += sample.value
            elif sample.name == ERRORS:
                figures.failed_calls[labels.get("variant", "stable")] += sample.value
            elif sample.name == SHADOWS:
                figures.shadows[labels.get("outcome", "")] += sample.value
    return figures


def metrics_url(url: str) -> str:
    """http://host:port -> http://host:port/metrics (a path given is kept)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise MetricsProblem(f"{url!r} is not a metrics URL: use http://HOST:PORT[/metrics]")
    return url if parts.path not in ("", "/") else url.rstrip("/") + "/metrics"


def scrape(urls: list[str], service: str, *, timeout_s: float = 10.0) -> MetricFigures:
    """Every gateway's counters of `service`, summed."""
    figures = MetricFigures()
    for given in urls:
        url = metrics_url(given)
        try:
            with urllib.request.urlopen(url, timeout=timeout_s) as response:
                text = response.read().decode("utf-8")
        except (urllib.error.URLError, OSError) as exc:
            raise MetricsProblem(
                f"cannot read {url}: {getattr(exc, 'reason', exc)}; check the gateway's "
                "MODGATE_GATEWAY_METRICS_PORT and that it is reachable from here"
            ) from None
        try:
            parse_metrics(text, service, figures)
        except MetricsProblem as exc:
            raise MetricsProblem(f"{url}: {exc}") from None
        figures.sources.append(url)
    return figures
