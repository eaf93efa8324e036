"""The shape of the package, kept as the structure review left it (docs/ARCHITECTURE.md).

The import layers are checked by import-linter in `make lint` (contracts in pyproject.toml).
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "ci_perf"
MAX_FUNCTION_LINES = 60
MAX_MODULE_SHARE = 0.08


def _modules() -> dict[Path, str]:
    return {path: path.read_text(encoding="utf-8") for path in sorted(PACKAGE.rglob("*.py"))}


def test_no_function_is_longer_than_sixty_lines() -> None:
    long = [
        f"{path.relative_to(PACKAGE)}:{node.lineno} {node.name} ({node.end_lineno - node.lineno + 1} lines)"
        for path, text in _modules().items()
        for node in ast.walk(ast.parse(text))
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and node.end_lineno is not None
        and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES
    ]
    assert long == []


def test_no_module_holds_more_than_eight_percent_of_the_package() -> None:
    lines = {path: len(text.splitlines()) for path, text in _modules().items()}
    total = sum(lines.values())
    biggest = max(lines, key=lambda path: lines[path])
    assert lines[biggest] <= MAX_MODULE_SHARE * total, f"{biggest.relative_to(PACKAGE)}: {lines[biggest]} of {total}"


def test_the_package_imports_nothing_heavy() -> None:
    """`import ci_perf` happens in every Locust process: the public names load lazily."""
    tree = ast.parse((PACKAGE / "__init__.py").read_text(encoding="utf-8"))
    imported = {
        node.module
        for node in tree.body
        if isinstance(node, ast.ImportFrom) and node.module and node.module != "__future__"
    }
    assert imported <= {"importlib.metadata", "ci_perf.errors", "typing"}
