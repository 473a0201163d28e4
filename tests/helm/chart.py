"""Render the modgate chart with the real helm binary and look at the objects it produces."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "helm" / "modgate"
RELEASE = "rel"
NAMESPACE = "moderation"
# The Kubernetes versions the chart is validated against (oldest supported, current).
KUBE_VERSIONS = ("1.29.0", "1.33.0")

Obj = dict[str, Any]


def helm_bin() -> str:
    """helm from the repo's .tools/bin (installed by `make tools`), else from PATH."""
    local = REPO / ".tools" / "bin" / "helm"
    if local.exists():
        return str(local)
    found = shutil.which("helm")
    if found is None:
        pytest.fail("helm not found: run `make tools` (installs helm 3.18 into .tools/bin)")
    return found


def matrix() -> dict[str, tuple[Path, ...]]:
    """Render matrix: the chart defaults plus every helm/modgate/ci/*-values.yaml file."""
    cases: dict[str, tuple[Path, ...]] = {"defaults": ()}
    for path in sorted((CHART / "ci").glob("*-values.yaml")):
        cases[path.name.removesuffix("-values.yaml")] = (path,)
    return cases


@dataclass(frozen=True)
class HelmResult:
    returncode: int
    stdout: str
    stderr: str


def helm(*args: str) -> HelmResult:
    proc = subprocess.run(
        [helm_bin(), *args], capture_output=True, text=True, timeout=60, check=False, cwd=REPO
    )
    return HelmResult(proc.returncode, proc.stdout, proc.stderr)


def template_args(
    values_files: Sequence[Path] = (), sets: Sequence[str] = (), kube_version: str = KUBE_VERSIONS[-1]
) -> list[str]:
    args = ["template", RELEASE, str(CHART), "--namespace", NAMESPACE, "--kube-version", kube_version]
    for path in values_files:
        args += ["--values", str(path)]
    for item in sets:
        args += ["--set", item]
    return args


def render_text(
    values_files: Sequence[Path] = (), sets: Sequence[str] = (), kube_version: str = KUBE_VERSIONS[-1]
) -> str:
    result = helm(*template_args(values_files, sets, kube_version))
    if result.returncode != 0:
        raise AssertionError(f"helm template failed ({values_files}, {sets}):\n{result.stderr}")
    return result.stdout


def parse(text: str) -> list[Obj]:
    return [doc for doc in yaml.safe_load_all(text) if doc]


@cache
def _render_cached(values_files: tuple[Path, ...], sets: tuple[str, ...]) -> tuple[Obj, ...]:
    return tuple(parse(render_text(values_files, sets)))


def render(values_files: Iterable[Path] = (), sets: Iterable[str] = ()) -> list[Obj]:
    """Rendered objects (cached per arguments; callers must not mutate them)."""
    return list(_render_cached(tuple(values_files), tuple(sets)))


def render_case(name: str, sets: Iterable[str] = ()) -> list[Obj]:
    return render(matrix()[name], sets)


# --- looking at objects ----------------------------------------------------------------------


def of_kind(objs: Iterable[Obj], kind: str) -> list[Obj]:
    return [o for o in objs if o["kind"] == kind]


def named(objs: Iterable[Obj], kind: str, name: str) -> Obj:
    hits = [o for o in objs if o["kind"] == kind and o["metadata"]["name"] == name]
    assert len(hits) == 1, f"expected one {kind}/{name}, found {len(hits)}"
    return hits[0]


def pod_spec(workload: Obj) -> Obj:
    return workload["spec"] if workload["kind"] == "Pod" else workload["spec"]["template"]["spec"]


def pod_labels(deployment: Obj) -> dict[str, str]:
    return deployment["spec"]["template"]["metadata"]["labels"]


def containers(workload: Obj, *, init: bool = True) -> Iterator[Obj]:
    spec = pod_spec(workload)
    yield from spec.get("containers", [])
    if init:
        yield from spec.get("initContainers", [])


def env_of(container: Obj) -> dict[str, str]:
    """Literal env values (valueFrom entries map to None)."""
    return {e["name"]: e.get("value") for e in container.get("env", [])}


def selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(key) == value for key, value in selector.items())


def label_selector_matches(selector: Obj, labels: dict[str, str]) -> bool:
    """A metav1.LabelSelector (matchLabels + matchExpressions) against a label set."""
    if not selects(selector.get("matchLabels", {}), labels):
        return False
    for expr in selector.get("matchExpressions", []):
        key, op, values = expr["key"], expr["operator"], expr.get("values", [])
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and labels.get(key) in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return True


def upstreams(objs: Iterable[Obj]) -> Obj:
    """The gateway's upstreams file, parsed from its ConfigMap."""
    configmap = named(objs, "ConfigMap", f"{RELEASE}-gateway")
    return yaml.safe_load(configmap["data"]["upstreams.yaml"])
