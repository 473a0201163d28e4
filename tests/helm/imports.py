"""Which installed distributions a part of the repo needs: follow its imports (AST, not
execution) through the repo's own modules and map third-party top-level names to
distributions."""

from __future__ import annotations

import ast
import importlib.metadata as metadata
import re
import sys
from collections.abc import Iterable
from functools import cache
from pathlib import Path

from tests.helm.chart import REPO

LOCAL_PACKAGES = {"gateway", "services", "modgate"}


def _module_file(module: str) -> Path | None:
    base = REPO.joinpath(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.exists():
            return candidate
    return None


_OPTIONAL = {"ImportError", "ModuleNotFoundError"}


def _required_imports(tree: ast.AST) -> list[ast.Import | ast.ImportFrom]:
    """Import statements, leaving out optional ones (inside `try: ... except ImportError`)."""
    found: list[ast.Import | ast.ImportFrom] = []

    def visit(node: ast.AST, optional: bool) -> None:
        if isinstance(node, ast.Import | ast.ImportFrom):
            if not optional:
                found.append(node)
            return
        if isinstance(node, ast.Try):
            caught = (
                {n.id for h in node.handlers for n in ast.walk(h.type) if isinstance(n, ast.Name)}
                if all(h.type is not None for h in node.handlers)
                else _OPTIONAL
            )
            for child in node.body:
                visit(child, optional or bool(caught & _OPTIONAL))
            for child in [*node.handlers, *node.orelse, *node.finalbody]:
                visit(child, optional)
            return
        for child in ast.iter_child_nodes(node):
            visit(child, optional)

    visit(tree, False)
    return found


def third_party_imports(roots: Iterable[str]) -> dict[str, set[Path]]:
    """Top-level third-party module names imported from `roots` (dirs or files under the repo),
    following imports of the repo's own modules; name -> the files importing it."""
    todo: list[Path] = []
    for root in roots:
        path = REPO / root
        todo += sorted(path.rglob("*.py")) if path.is_dir() else [path]
    seen: set[Path] = set()
    found: dict[str, set[Path]] = {}
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        for node in _required_imports(ast.parse(path.read_text(encoding="utf-8"))):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
            for name in names:
                top = name.split(".")[0]
                if top in LOCAL_PACKAGES:
                    local = _module_file(name)
                    if local is not None:
                        todo.append(local)
                elif top not in sys.stdlib_module_names and top != "__future__":
                    found.setdefault(top, set()).add(path)
    return found


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_name(requirement: str) -> str:
    return canonical(re.split(r"[=<>!~ \[;]", requirement.strip(), maxsplit=1)[0])


@cache
def _requires(dist: str) -> tuple[str, ...]:
    try:
        reqs = metadata.requires(dist) or []
    except metadata.PackageNotFoundError:
        return ()
    # Extras-only requirements are not installed by a plain `pip install dist`.
    return tuple(requirement_name(r) for r in reqs if "extra ==" not in r)


def closure(distributions: Iterable[str]) -> set[str]:
    """The distributions plus everything they (transitively) require."""
    result: set[str] = set()
    todo = [canonical(d) for d in distributions]
    while todo:
        dist = todo.pop()
        if dist in result:
            continue
        result.add(dist)
        todo += _requires(dist)
    return result


def missing_distributions(roots: Iterable[str], packages: Iterable[str]) -> dict[str, list[str]]:
    """Imported module -> candidate distributions, for imports `packages` would not install."""
    installed = closure(requirement_name(p) for p in packages)
    by_module = metadata.packages_distributions()
    missing: dict[str, list[str]] = {}
    for module in third_party_imports(roots):
        candidates = [canonical(d) for d in by_module.get(module, [])]
        if not candidates:
            # Not installed here at all: an optional import that cannot be checked.
            continue
        # Namespace packages (google, opentelemetry) map to several distributions; any will do.
        if not set(candidates) & installed:
            missing[module] = sorted(set(candidates))
    return missing
