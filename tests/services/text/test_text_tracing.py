"""Inference runs inside an OpenTelemetry span per request in the batch, with batch size and model id.

Runs in a subprocess: it installs its own global tracer provider (in-memory exporter), which a
pytest process shared with other tests must not do.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]

PROBE = r"""
import json
from opentelemetry import context, trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

exporter = InMemorySpanExporter()
provider = TracerProvider()
provider.add_span_processor(SimpleSpanProcessor(exporter))
trace.set_tracer_provider(provider)

from services.text.encoder import Encoder, load_text_encoder
from services.text.models import resolve_model

resolved = resolve_model()
encoder = load_text_encoder("minilm", minilm=resolved, usem=None, threads=1, variant="canary")
probe = trace.get_tracer("probe")
with probe.start_as_current_span("request-a"):
    a = context.get_current()
with probe.start_as_current_span("request-b"):
    b = context.get_current()
vectors = encoder.encode(["one", "two", "three"], [a, a, b])
with probe.start_as_current_span("policy-load"):
    encoder.encode(["exemplar"])
spans = exporter.get_finished_spans()
names = {s.context.span_id: s.name for s in spans}
print(json.dumps({
    "shape": list(vectors.shape),
    "embed": [
        {"parent": names.get(s.parent.span_id) if s.parent else None, "attributes": dict(s.attributes),
         "links": len(s.links)}
        for s in spans if s.name == "text.embed"
    ],
}))
"""


def test_embedding_batches_are_traced_per_request() -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run(
        [sys.executable, "-c", PROBE],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["shape"] == [3, 384]
    batch, single = report["embed"][:2], report["embed"][2:]
    # One batch of three texts from two requests: a span in each request's trace, linked.
    assert sorted(s["parent"] for s in batch) == ["request-a", "request-b"]
    for span in batch:
        assert span["attributes"]["modgate.batch_size"] == 3
        assert span["attributes"]["modgate.model.id"] == "all-MiniLM-L6-v2@53aa51172d14"
        assert span["attributes"]["modgate.variant"] == "canary"
        assert span["links"] == 1
    # A direct call (policy exemplars) is a child of the caller's span.
    assert [s["parent"] for s in single] == ["policy-load"]
    assert single[0]["attributes"]["modgate.batch_size"] == 1
