"""Size rules for the product code (gateway/, services/, modgate/; generated protobuf aside).

Small modules with one job each and short functions keep the request path readable; ruff
enforces complexity (C901 <= 12, pyproject.toml), this test the sizes ruff does not check.
"""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("gateway", "services", "modgate")
MAX_MODULE_LINES = 450
MAX_FUNCTION_LINES = 80


def _modules() -> list[Path]:
    return sorted(p for pkg in PACKAGES for p in (REPO / pkg).rglob("*.py") if "_pb2" not in p.name)


def test_the_rules_see_the_code() -> None:
    assert len(_modules()) > 50  # a wrong root would make the checks below pass vacuously


def test_no_module_over_the_line_limit() -> None:
    too_long = {
        str(p.relative_to(REPO)): n
        for p in _modules()
        if (n := p.read_text(encoding="utf-8").count("\n")) > MAX_MODULE_LINES
    }
    assert too_long == {}, f"split these by job (limit {MAX_MODULE_LINES} lines)"


def test_no_function_over_the_line_limit() -> None:
    too_long = {}
    for path in _modules():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    too_long[f"{path.relative_to(REPO)}:{node.lineno} {node.name}"] = length
    assert too_long == {}, f"break these up (limit {MAX_FUNCTION_LINES} lines)"
