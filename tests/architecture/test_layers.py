"""The layers hold (issue 28): a module imports only from its own layer or below, and no
import circle exists. Imports inside functions count (a deferred import is still a
dependency). Imports under ``if TYPE_CHECKING`` count for the layers (a type is a
dependency too) and not for circles (they never run).

The layers, top to bottom:

    fronts        api, cli, commands, worker, readiness
    jobs          jobs (start, submit, update, resume, budget, provenance), services (the
                  container)
    capabilities  screening, indexer, criteria, decisions, records
    machinery     jobs.engine (the job runner), llm (the model gateway)
    storage       db, config
    base          common, errors, tenancy, prompts

A module's layer is its longest listed prefix (``jobs.engine.runner`` is machinery, ``jobs.submit``
is jobs). No exception is listed: the test fails on any upward import and any import circle."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2] / "src" / "crystallise"
LAYERS = {
    **dict.fromkeys(("api", "cli", "commands", "worker", "readiness"), 5),
    **dict.fromkeys(("jobs", "services"), 4),
    **dict.fromkeys(("screening", "indexer", "criteria", "decisions", "records"), 3),
    **dict.fromkeys(("jobs.engine", "llm"), 2),
    **dict.fromkeys(("db", "config"), 1),
    **dict.fromkeys(("common", "errors", "tenancy", "prompts"), 0),
}


def _modules() -> dict[str, Path]:
    out = {}
    for path in ROOT.rglob("*.py"):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


MODULES = _modules()


def _resolve(name: str) -> str:
    name = name.removeprefix("crystallise").lstrip(".")
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name


def _imports(path: Path, *, annotations: bool = False) -> set[str]:
    """The modules ``path`` imports; with ``annotations``, those imported only for type
    annotations (under ``if TYPE_CHECKING``) too."""
    found: set[str] = set()

    def visit(nodes: list[ast.stmt]) -> None:
        for node in nodes:
            typing_only = isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
            if typing_only and not annotations:
                continue
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("crystallise"):
                for alias in node.names:
                    found.add(_resolve(f"{node.module}.{alias.name}"))
            elif isinstance(node, ast.Import):
                found.update(
                    _resolve(a.name) for a in node.names if a.name.startswith("crystallise")
                )
            for child in ("body", "orelse", "handlers", "finalbody"):
                visit(getattr(node, child, []))

    visit(ast.parse(path.read_text(encoding="utf-8")).body)
    return found - {""}


GRAPH = {module: _imports(path) - {module} for module, path in MODULES.items()}
# what a module depends on, its annotations included: layers hold for types too (a
# capability does not name the container); circles count only imports that run
TYPED_GRAPH = {
    module: _imports(path, annotations=True) - {module} for module, path in MODULES.items()
}


def _layer(module: str) -> int:
    parts = module.split(".")
    for n in range(len(parts), 0, -1):
        if ".".join(parts[:n]) in LAYERS:
            return LAYERS[".".join(parts[:n])]
    raise KeyError(module)


def test_every_package_has_a_layer() -> None:
    assert {m.split(".")[0] for m in MODULES if m} <= set(LAYERS)
    assert _layer("jobs.engine.runner") == 2 and _layer("jobs.submit") == 4


def test_the_graph_sees_deferred_imports_and_not_type_checking_ones(tmp_path: Path) -> None:
    """The checker itself can fail: an import inside a function is an edge; one under
    ``if TYPE_CHECKING`` is not."""
    module = tmp_path / "m.py"
    module.write_text(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from crystallise.services import Services\n"
        "def f():\n    from crystallise.jobs.submit import submit_screening\n"
    )
    assert _imports(module) == {"jobs.submit"}
    assert _imports(module, annotations=True) == {"jobs.submit", "services"}


def test_no_module_imports_from_a_layer_above_its_own() -> None:
    upward = {(a, b) for a, bs in TYPED_GRAPH.items() for b in bs if a and _layer(b) > _layer(a)}
    assert upward == set(), "upward imports"


def _circles() -> Iterator[frozenset[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()

    def visit(v: str) -> Iterator[frozenset[str]]:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in GRAPH.get(v, ()):
            if w not in index:
                yield from visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.add(w)
                if w == v:
                    break
            if len(component) > 1:
                yield frozenset(component)

    for module in GRAPH:
        if module not in index:
            yield from visit(module)


def test_no_import_circles() -> None:
    assert set(_circles()) == set(), "import circles"
