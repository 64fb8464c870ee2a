"""Shape rules of the codebase (issue 10): short functions, thin routes, errors rendered once."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "crystallise"
MAX_FUNCTION_LINES = 60
MAX_ROUTE_LINES = 25
HTTP_VERBS = {"get", "post", "put", "patch", "delete"}


def _functions() -> list[tuple[Path, ast.FunctionDef | ast.AsyncFunctionDef]]:
    found = []
    for path in sorted(SRC.rglob("*.py")):
        if "migrations" in path.parts:
            continue  # Alembic revisions are data, not code paths
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                found.append((path, node))
    return found


def _length(node: ast.FunctionDef | ast.AsyncFunctionDef) -> int:
    return (node.end_lineno or node.lineno) - node.lineno + 1


def _is_route(node: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    for decorator in node.decorator_list:
        func = decorator.func if isinstance(decorator, ast.Call) else decorator
        if isinstance(func, ast.Attribute) and func.attr in HTTP_VERBS:
            return True
    return False


def test_no_function_in_src_is_longer_than_60_lines() -> None:
    long = [
        f"{path.relative_to(SRC)}:{node.lineno} {node.name} ({_length(node)} lines)"
        for path, node in _functions()
        if _length(node) > MAX_FUNCTION_LINES
    ]
    assert not long, long


def test_every_route_function_is_at_most_25_lines() -> None:
    routes = [(path, node) for path, node in _functions() if _is_route(node)]
    assert len(routes) > 20  # the check sees the routers
    long = [
        f"{path.relative_to(SRC)}:{node.lineno} {node.name} ({_length(node)} lines)"
        for path, node in routes
        if _length(node) > MAX_ROUTE_LINES
    ]
    assert not long, long


def test_nothing_below_api_raises_http_exceptions() -> None:
    offenders = [
        str(path.relative_to(SRC))
        for path in SRC.rglob("*.py")
        if "api" not in path.relative_to(SRC).parts[:1] and "HTTPException" in path.read_text()
    ]
    assert not offenders, offenders
