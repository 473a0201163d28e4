"""The review console's values (`console`): off by default; on, a Deployment + Service from the
gateway image over the shared PostgreSQL store, its users and session key from Secrets; and the
refusals: a store the console cannot reach, missing Secrets."""

from __future__ import annotations

import pytest

from modgate.console.config import ConsoleSettings
from tests.helm.chart import (
    containers,
    env_of,
    helm,
    named,
    pod_labels,
    pod_spec,
    render,
    render_case,
    template_args,
)

CONSOLE = "rel-console"


def test_the_console_is_off_by_default() -> None:
    components = {pod_labels(d)["app.kubernetes.io/component"] for d in render() if d["kind"] == "Deployment"}
    assert "console" not in components


def test_the_console_runs_as_its_own_deployment_over_the_shared_store() -> None:
    objs = render_case("console")
    deployment = named(objs, "Deployment", CONSOLE)
    [container] = list(containers(deployment))
    assert container["command"] == ["python", "-m", "modgate.console"]
    assert container["image"].startswith("modgate-gateway:")  # the gateway's image carries it
    assert deployment["spec"]["replicas"] == 2
    env = env_of(container)
    assert env["MODGATE_CONSOLE_HOST"] == "0.0.0.0"  # in a pod; 127.0.0.1 is the local default
    assert env["MODGATE_CONSOLE_TOKENS_FILE"] == "/etc/modgate/console/tokens.yaml"
    assert env["MODGATE_CONSOLE_PUBLIC_ORIGIN"] == "https://review.example.com"
    by_name = {e["name"]: e for e in container["env"]}
    assert by_name["MODGATE_STORE_URL"]["valueFrom"]["secretKeyRef"] == {
        "name": "modgate-store-url",
        "key": "url",
    }
    session = by_name["MODGATE_CONSOLE_SESSION_SECRET"]["valueFrom"]["secretKeyRef"]
    assert session == {"name": "modgate-console-session", "key": "session-secret"}
    volumes = {v["name"]: v for v in pod_spec(deployment)["volumes"]}
    assert volumes["console-tokens"]["secret"]["secretName"] == "modgate-console-tokens"
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    service = named(objs, "Service", CONSOLE)
    assert service["spec"]["ports"] == [
        {"name": "http", "port": 8080, "targetPort": "http", "protocol": "TCP"}
    ]
    assert service["spec"]["selector"]["app.kubernetes.io/component"] == "console"
    # What the chart sets parses into the console's own settings.
    plain = {k: v for k, v in env.items() if k.startswith("MODGATE_CONSOLE_") and isinstance(v, str)}
    settings = ConsoleSettings.model_validate(
        {k.removeprefix("MODGATE_CONSOLE_").lower(): v for k, v in plain.items()}
    )
    assert settings.port == 8080 and settings.secure_cookies and settings.lease_s == 900


ON = ["console.enabled=true", "console.tokens.secretName=t", "console.sessionSecret.name=s"]
PG = ["store.postgresql.urlSecret.name=u"]


@pytest.mark.parametrize(
    ("label", "sets", "says"),
    [
        ("sqlite store", [*ON, "store.backend=sqlite", "gateway.replicaCount=1"], "store.backend=postgresql"),
        ("no tokens", [*ON, *PG, "console.tokens.secretName="], "console.tokens.secretName"),
        ("no session key", [*ON, *PG, "console.sessionSecret.name="], "console.sessionSecret.name"),
    ],
)
def test_the_chart_refuses_a_console_it_cannot_run(label: str, sets: list[str], says: str) -> None:
    result = helm(*template_args(), *[arg for item in sets for arg in ("--set", item)])
    assert result.returncode != 0, f"helm template accepted a console with {label}"
    assert says in result.stderr, result.stderr
