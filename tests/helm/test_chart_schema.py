"""values.schema.json rejects bad values; template guards reject inconsistent ones."""

from __future__ import annotations

import json

import pytest

from tests.helm.chart import CHART, helm, template_args

# (description, helm args, text the error must contain)
BAD_VALUES = [
    ("canary weight 150", ["--set", "vision.canary.weight=150"], "vision.canary.weight"),
    ("gateway canary weight 150", ["--set", "gateway.canary.weight=150"], "gateway.canary.weight"),
    ("negative weight", ["--set", "speech.canary.weight=-1"], "speech.canary.weight"),
    ('replicas "one"', ["--set-string", "speech.replicaCount=one"], "speech.replicaCount"),
    ('gateway replicas "one"', ["--set-string", "gateway.replicaCount=one"], "gateway.replicaCount"),
    ("unknown top-level key", ["--set", "gatway.replicaCount=2"], "gatway"),
    ("unknown nested key", ["--set", "vision.canary.wieght=10"], "wieght"),
    ("unknown service setting", ["--set", "speech.config.beamWidth=4"], "beamWidth"),
    ("unknown gateway setting", ["--set", "gateway.config.maxBytes=10"], "maxBytes"),
    ("bad model source", ["--set", "speech.model.source=s3"], "speech.model.source"),
    ("sampling ratio > 1", ["--set", "tracing.samplingRatio=1.5"], "tracing.samplingRatio"),
    ("port out of range", ["--set", "gateway.port=70000"], "gateway.port"),
    ("bad quantity", ["--set", "text.resources.limits.memory=lots"], "text.resources.limits.memory"),
    ("text has no GPU option", ["--set", "text.gpu.enabled=true"], "gpu"),
    ("bad shadow type", ["--set-string", "speech.canary.shadow=maybe"], "speech.canary.shadow"),
    ("bank reload interval 0", ["--set", "banks.reloadIntervalS=0"], "banks.reloadIntervalS"),
    ("unknown banks key", ["--set", "banks.claim=x"], "claim"),
    ("unknown store backend", ["--set", "store.backend=mysql"], "store.backend"),
    ("negative retention", ["--set", "store.retentionDays=-1"], "store.retentionDays"),
    ("unknown store setting", ["--set", "store.config.poolSze=4"], "poolSze"),
    ("bad SQLite synchronous", ["--set", "store.config.sqliteSynchronous=OFF"], "sqliteSynchronous"),
    ("empty URL Secret key", ["--set", "store.postgresql.urlSecret.key="], "store.postgresql.urlSecret.key"),
    ("relative spool path", ["--set", "store.spool.mountPath=spool"], "store.spool.mountPath"),
]


@pytest.mark.parametrize(("label", "args", "mentions"), BAD_VALUES, ids=[b[0] for b in BAD_VALUES])
def test_schema_rejects_bad_values(label: str, args: list[str], mentions: str) -> None:
    rendered = helm(*template_args(), *args)
    assert rendered.returncode != 0, f"helm template accepted {label}"
    assert "schema" in rendered.stderr and mentions in rendered.stderr, rendered.stderr
    linted = helm("lint", "--strict", str(CHART), *args)
    assert linted.returncode != 0, f"helm lint accepted {label}"
    assert mentions in linted.stdout + linted.stderr


@pytest.mark.parametrize(
    ("label", "args", "mentions"),
    [
        (
            "gateway shadow without a router",
            ["--set", "gateway.canary.enabled=true", "--set", "gateway.canary.shadow=true"],
            "needs a traffic router",
        ),
        ("TLS without a Secret", ["--set", "gateway.tls.enabled=true"], "gateway.tls.secretName"),
        ("auth without a Secret", ["--set", "gateway.auth.enabled=true"], "gateway.auth.secretName"),
        (
            "mTLS without a test client certificate",
            [
                *("--set", "gateway.tls.enabled=true", "--set", "gateway.tls.secretName=tls"),
                *("--set", "gateway.tls.clientCA.enabled=true"),
            ],
            "tests.clientCertSecretName",
        ),
        ("PVC weights without a claim", ["--set", "text.model.source=pvc"], "model.pvc.claimName"),
        (
            "image weights without an image",
            ["--set", "vision.canary.enabled=true", "--set", "vision.canary.model.source=image"],
            "model.image.repository",
        ),
        (
            "a bank directory without a volume",
            ["--set", "banks.enabled=true"],
            "banks.existingClaim",
        ),
        (
            "no policy at all",
            ["--set", "policy.includeDefault=false", "--set", "policy.includeMultilingual=false"],
            "no policy files",
        ),
    ],
)
def test_template_guards_reject_inconsistent_values(label: str, args: list[str], mentions: str) -> None:
    result = helm(*template_args(), *args)
    assert result.returncode != 0, f"helm template accepted {label}"
    assert mentions in result.stderr, result.stderr


def test_schema_forbids_unknown_keys_everywhere_it_can() -> None:
    """Every object the schema describes lists its keys and rejects others; the only open
    objects are Kubernetes structures passed through verbatim (list items such as env entries
    and spread constraints, and free-form maps like affinity), which the API server validates."""
    schema = json.loads((CHART / "values.schema.json").read_text())
    open_objects: list[str] = []

    def walk(node: object, path: str) -> None:
        if isinstance(node, dict):
            described = node.get("type") == "object" and "properties" in node
            if described and node.get("additionalProperties") is not False:
                open_objects.append(path)
            for key, child in node.items():
                walk(child, f"{path}.{key}")
        elif isinstance(node, list):
            for i, child in enumerate(node):
                walk(child, f"{path}[{i}]")

    walk(schema, "$")
    assert schema["additionalProperties"] is False
    assert open_objects and all(path.endswith(".items") for path in open_objects), open_objects
