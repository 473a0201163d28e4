"""NOTES.txt renders for every matrix case and tells the operator how to promote and roll back.

`helm template` does not render NOTES.txt and `helm install --dry-run` needs a cluster, so the
test renders a copy of the chart in which NOTES.txt is wrapped into a ConfigMap."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.helm.chart import CHART, RELEASE, helm, matrix, parse, template_args


@pytest.fixture(scope="module")
def notes_chart(tmp_path_factory: pytest.TempPathFactory) -> Path:
    chart = tmp_path_factory.mktemp("notes") / "modgate"
    shutil.copytree(CHART, chart)
    notes = (chart / "templates" / "NOTES.txt").read_text()
    (chart / "templates" / "NOTES.txt").unlink()
    (chart / "templates" / "_notes.tpl").write_text(
        '{{- define "test.notes" -}}\n' + notes + "\n{{- end -}}\n"
    )
    (chart / "templates" / "zz-notes.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: notes\ndata:\n"
        '  notes: {{ include "test.notes" . | quote }}\n'
    )
    return chart


def render_notes(chart: Path, files: tuple[Path, ...] = (), sets: tuple[str, ...] = ()) -> str:
    args = template_args(files, sets)
    args[2] = str(chart)
    result = helm(*args, "--show-only", "templates/zz-notes.yaml")
    assert result.returncode == 0, result.stderr
    return parse(result.stdout)[0]["data"]["notes"]


@pytest.mark.parametrize("case", sorted(matrix()))
def test_notes_render_with_promote_and_rollback_commands(notes_chart: Path, case: str) -> None:
    notes = render_notes(notes_chart, matrix()[case])
    assert f"helm rollback {RELEASE} <REVISION>" in notes
    assert f"helm upgrade {RELEASE}" in notes
    assert f"helm test {RELEASE}" in notes
    assert f"{RELEASE}-gateway.moderation.svc:50051" in notes


def test_notes_describe_each_release_state(notes_chart: Path) -> None:
    notes = render_notes(notes_chart, matrix()["vision-canary"])
    assert "vision  canary ON: 10% of request ids routed to the canary" in notes
    assert "speech  stable only" in notes
    shadow = render_notes(notes_chart, matrix()["speech-shadow"])
    assert "speech  canary ON: 100% of request ids copied to the canary (shadow" in shadow
    ratio = render_notes(notes_chart, sets=("gateway.canary.enabled=true", "gateway.replicaCount=3"))
    assert "by replica ratio: 1 canary : 3 stable pods = ~25% of connections" in ratio
    routed = render_notes(notes_chart, matrix()["gateway-canary"])
    assert "gateway  canary ON (25% by route weight)" in routed


def test_notes_name_the_store_and_the_secret_to_create(notes_chart: Path) -> None:
    notes = render_notes(notes_chart)
    assert "Verdict store:  PostgreSQL, URL from Secret modgate-store key url" in notes
    assert "kubectl -n moderation create secret generic modgate-store --from-literal=url=" in notes
    sqlite = render_notes(notes_chart, matrix()["store-sqlite"])
    assert "Verdict store:  SQLite in the gateway pod (emptyDir: verdicts are lost with the pod)" in sqlite
    off = render_notes(notes_chart, sets=("store.enabled=false",))
    assert "Verdict store:  off" in off
