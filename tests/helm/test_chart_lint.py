"""`helm lint --strict` over the render matrix (defaults + every ci/*-values.yaml)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helm.chart import CHART, helm, matrix


@pytest.mark.parametrize("case", sorted(matrix()))
def test_lint_strict(case: str) -> None:
    args = ["lint", "--strict", str(CHART)]
    for path in matrix()[case]:
        args += ["--values", str(path)]
    result = helm(*args)
    assert result.returncode == 0, f"helm lint --strict failed for {case}:\n{result.stdout}{result.stderr}"
    assert "0 chart(s) failed" in result.stdout


def test_matrix_covers_the_required_scenarios() -> None:
    # The acceptance matrix: defaults, vision canary at 10, speech shadow, gateway canary, GPU,
    # tracing, NetworkPolicy (the others are extra).
    required = {"defaults", "vision-canary", "speech-shadow", "gateway-canary", "gpu", "tracing"}
    required.add("networkpolicy")
    assert required <= set(matrix()), sorted(required - set(matrix()))
    for files in matrix().values():
        assert all(isinstance(path, Path) and path.exists() for path in files)
