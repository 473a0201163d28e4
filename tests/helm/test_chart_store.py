"""The verdict store's values (`store`): the env, volumes and rollout strategy of the gateway pods
for each backend, what the store's own settings make of that env, and the refusals: SQLite
where more than one gateway pod can run, PostgreSQL without a Secret to read its URL from."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

import pytest

from modgate.store.config import StoreSettings
from tests.helm.chart import (
    Obj,
    containers,
    env_of,
    helm,
    named,
    of_kind,
    pod_labels,
    pod_spec,
    render,
    render_case,
    template_args,
)

GATEWAYS = ("rel-gateway", "rel-gateway-canary")
STORE_VOLUMES = {"verdicts", "verdict-spool"}


def gateway_deployments(objs: Iterable[Obj]) -> list[Obj]:
    found = [
        d for d in of_kind(objs, "Deployment") if pod_labels(d)["app.kubernetes.io/component"] == "gateway"
    ]
    assert found
    return found


def main_container(deployment: Obj) -> Obj:
    (container,) = containers(deployment, init=False)
    return container


def is_store_env(name: str) -> bool:
    return name.startswith("MODGATE_STORE_") or name == "MODGATE_HOME"


def store_env(deployment: Obj) -> dict[str, Obj]:
    """The MODGATE_STORE_* and MODGATE_HOME entries of the gateway container, whole."""
    return {e["name"]: e for e in main_container(deployment)["env"] if is_store_env(e["name"])}


def volumes(deployment: Obj) -> dict[str, Obj]:
    return {v["name"]: v for v in pod_spec(deployment)["volumes"]}


def mounts(deployment: Obj) -> dict[str, Obj]:
    return {m["name"]: m for m in main_container(deployment)["volumeMounts"]}


def store_settings(
    env: dict[str, str | None], monkeypatch: pytest.MonkeyPatch, **secrets: str
) -> StoreSettings:
    """What modgate/store/config.py reads from a rendered gateway env (secrets fill valueFrom)."""
    for name in list(os.environ):
        if is_store_env(name):
            monkeypatch.delenv(name)
    for name, value in env.items():
        if value is not None:
            monkeypatch.setenv(name, value)
    for name, value in secrets.items():
        monkeypatch.setenv(name, value)
    return StoreSettings()


# --- postgresql ----------------------------------------------------------------------------


def test_default_store_is_postgresql_with_the_url_from_a_secret_the_chart_does_not_create() -> None:
    objs = render()
    (gateway,) = gateway_deployments(objs)
    assert store_env(gateway) == {
        "MODGATE_STORE_ENABLED": {"name": "MODGATE_STORE_ENABLED", "value": "true"},
        "MODGATE_STORE_URL": {
            "name": "MODGATE_STORE_URL",
            "valueFrom": {"secretKeyRef": {"name": "modgate-store", "key": "url"}},
        },
        "MODGATE_STORE_RETENTION_DAYS": {"name": "MODGATE_STORE_RETENTION_DAYS", "value": "90"},
        "MODGATE_STORE_SPOOL_DIR": {
            "name": "MODGATE_STORE_SPOOL_DIR",
            "value": "/var/lib/modgate/verdict-spool",
        },
    }
    assert of_kind(objs, "Secret") == []
    assert gateway["spec"]["replicas"] == 2
    assert gateway["spec"]["strategy"]["type"] == "RollingUpdate"
    # PostgreSQL needs no file in the pod: only the spool volume, writable, an emptyDir.
    assert STORE_VOLUMES & set(volumes(gateway)) == {"verdict-spool"}
    assert volumes(gateway)["verdict-spool"]["emptyDir"] == {"sizeLimit": "1Gi"}
    spool_mount = mounts(gateway)["verdict-spool"]
    assert spool_mount["mountPath"] == "/var/lib/modgate/verdict-spool" and not spool_mount.get("readOnly")


def test_every_gateway_track_gets_the_store_and_no_model_service_does() -> None:
    objs = render_case("full")
    gateways = gateway_deployments(objs)
    assert sorted(d["metadata"]["name"] for d in gateways) == sorted(GATEWAYS)
    for gateway in gateways:
        env = store_env(gateway)
        assert env["MODGATE_STORE_URL"]["valueFrom"] == {
            "secretKeyRef": {"name": "moderation-db", "key": "sqlalchemy-url"}
        }, gateway["metadata"]["name"]
        assert env["MODGATE_STORE_POOL_SIZE"]["value"] == "16"
        assert volumes(gateway)["verdict-spool"]["emptyDir"] == {"sizeLimit": "4Gi"}
    for deployment in of_kind(objs, "Deployment"):
        if deployment in gateways:
            continue
        for container in containers(deployment):
            assert not [name for name in env_of(container) if is_store_env(name)], deployment["metadata"][
                "name"
            ]
        assert not STORE_VOLUMES & set(volumes(deployment)), deployment["metadata"]["name"]


def test_rendered_postgresql_env_parses_into_the_store_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    gateway = named(render_case("full"), "Deployment", "rel-gateway-canary")
    url = "postgresql://modgate:pw@db.example.com:5432/moderation"
    settings = store_settings(env_of(main_container(gateway)), monkeypatch, MODGATE_STORE_URL=url)
    assert settings.enabled and not settings.is_sqlite
    assert settings.url == url
    assert (settings.retention_days, settings.connect_timeout_s, settings.pool_size) == (365.0, 1.5, 16)
    assert settings.spool_dir == Path("/var/lib/modgate/verdict-spool")


def test_spool_on_a_claim() -> None:
    (gateway,) = gateway_deployments(render(sets=["store.spool.existingClaim=spool"]))
    assert volumes(gateway)["verdict-spool"] == {
        "name": "verdict-spool",
        "persistentVolumeClaim": {"claimName": "spool"},
    }


# --- sqlite --------------------------------------------------------------------------------


def test_sqlite_store_is_a_file_on_the_gateway_pods_volume(monkeypatch: pytest.MonkeyPatch) -> None:
    (gateway,) = gateway_deployments(render_case("store-sqlite"))
    env = store_env(gateway)
    assert "MODGATE_STORE_URL" not in env
    assert (
        env["MODGATE_HOME"]["value"] == mounts(gateway)["verdicts"]["mountPath"] == "/var/lib/modgate/store"
    )
    assert not mounts(gateway)["verdicts"].get("readOnly")
    assert volumes(gateway)["verdicts"] == {"name": "verdicts", "emptyDir": {"sizeLimit": "2Gi"}}
    assert volumes(gateway)["verdict-spool"]["persistentVolumeClaim"] == {
        "claimName": "modgate-verdict-spool"
    }
    # One writer: the old pod stops before the new one opens the file.
    assert gateway["spec"]["replicas"] == 1
    assert gateway["spec"]["strategy"] == {"type": "Recreate"}

    settings = store_settings(env_of(main_container(gateway)), monkeypatch)
    assert settings.is_sqlite
    assert settings.url == "sqlite:////var/lib/modgate/store/verdicts.db"
    assert settings.spool_dir == Path(env["MODGATE_STORE_SPOOL_DIR"]["value"])
    assert (settings.retention_days, settings.prune_interval_s) == (30.5, 600.0)
    assert settings.sqlite_synchronous == "FULL"


def test_sqlite_file_on_a_claim() -> None:
    objs = render(
        sets=["store.backend=sqlite", "gateway.replicaCount=1", "store.sqlite.existingClaim=verdicts"]
    )
    (gateway,) = gateway_deployments(objs)
    assert volumes(gateway)["verdicts"] == {
        "name": "verdicts",
        "persistentVolumeClaim": {"claimName": "verdicts"},
    }


def test_sqlite_with_an_autoscaler_capped_at_one_replica_is_accepted() -> None:
    sets = [
        "store.backend=sqlite",
        "gateway.autoscaling.enabled=true",
        "gateway.autoscaling.minReplicas=1",
        "gateway.autoscaling.maxReplicas=1",
    ]
    objs = render(sets=sets)
    hpa = named(objs, "HorizontalPodAutoscaler", "rel-gateway")
    assert hpa["spec"]["maxReplicas"] == 1
    (gateway,) = gateway_deployments(objs)
    assert "replicas" not in gateway["spec"] and gateway["spec"]["strategy"] == {"type": "Recreate"}


def test_store_off_sets_only_the_switch(monkeypatch: pytest.MonkeyPatch) -> None:
    # With the store off neither backend's requirement applies (an empty Secret name is fine).
    (gateway,) = gateway_deployments(render(sets=["store.enabled=false", "store.postgresql.urlSecret.name="]))
    assert store_env(gateway) == {
        "MODGATE_STORE_ENABLED": {"name": "MODGATE_STORE_ENABLED", "value": "false"}
    }
    assert not STORE_VOLUMES & set(volumes(gateway))
    assert gateway["spec"]["strategy"]["type"] == "RollingUpdate"
    assert store_settings(env_of(main_container(gateway)), monkeypatch).enabled is False


# --- refusals ------------------------------------------------------------------------------

# (label, --set values, what the message must say to set)
REFUSALS = [
    (
        "sqlite with the default 2 replicas",
        ["store.backend=sqlite"],
        "gateway.replicaCount is 2: set gateway.replicaCount=1",
    ),
    (
        "sqlite with a gateway canary",
        ["store.backend=sqlite", "gateway.replicaCount=1", "gateway.canary.enabled=true"],
        "set gateway.canary.enabled=false",
    ),
    (
        "sqlite with an autoscaler",
        ["store.backend=sqlite", "gateway.replicaCount=1", "gateway.autoscaling.enabled=true"],
        "the HPA run up to 10: set gateway.autoscaling.maxReplicas=1",
    ),
    (
        "postgresql without a Secret name",
        ["store.postgresql.urlSecret.name="],
        "set store.postgresql.urlSecret.name",
    ),
]


@pytest.mark.parametrize(("label", "sets", "says"), REFUSALS, ids=[r[0] for r in REFUSALS])
def test_chart_refuses_a_store_it_cannot_run(label: str, sets: list[str], says: str) -> None:
    args = [arg for item in sets for arg in ("--set", item)]
    result = helm(*template_args(), *args)
    assert result.returncode != 0, f"helm template accepted {label}"
    assert says in result.stderr, result.stderr
    if "sqlite" in label:
        # Every SQLite refusal also names the way out that keeps more replicas.
        assert "store.backend=postgresql" in result.stderr, result.stderr
