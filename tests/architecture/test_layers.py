"""The layers hold (issue 28): a module imports only from its own layer or below, and no
import circle exists. Imports inside functions count (a deferred import is still a
dependency); imports under ``if TYPE_CHECKING`` do not (they are annotations only).

The layers, top to bottom:

    fronts        api, cli, commands, worker, readiness
    jobs          jobs (submit, specs, provenance, update, budget), services (the container)
    capabilities  screening, indexer, criteria, decisions, records
    machinery     batch (the job runner), llm (the model gateway)
    storage       db, config
    base          common, errors, tenancy, prompts

``KNOWN_UPWARD`` and ``KNOWN_CIRCLES`` are the debts still open, each named; the test fails
on any new one, and on a listed one that is gone (so the lists only shrink)."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2] / "src" / "crystallise"
LAYERS = {
    **dict.fromkeys(("api", "cli", "commands", "worker", "readiness"), 5),
    **dict.fromkeys(("jobs", "services"), 4),
    **dict.fromkeys(("screening", "indexer", "criteria", "decisions", "records"), 3),
    **dict.fromkeys(("batch", "llm"), 2),
    **dict.fromkeys(("db", "config"), 1),
    **dict.fromkeys(("common", "errors", "tenancy", "prompts"), 0),
}
KNOWN_UPWARD = {
    # capabilities take the Services container and the job specs (issue 28: move each kind's
    # spec beside its capability, pass the capability what it needs)
    ("decisions.service", "jobs.specs"),
    ("decisions.service", "jobs.submit"),
    ("decisions.service", "services"),
    ("decisions.sessions", "jobs.submit"),
    ("indexer.jobs", "jobs.specs"),
    ("indexer.jobs", "services"),
    ("records.service", "jobs.specs"),
    ("screening.jobs", "jobs.specs"),
    ("screening.jobs", "services"),
    ("screening.mock", "jobs.specs"),
    ("screening.pipeline", "jobs.specs"),
    ("screening.reuse", "jobs.specs"),
    # the job machinery reaches up: the child process starts the services; model retirement
    # reads specs; the key policy takes the container
    ("batch.job_process", "jobs"),
    ("batch.models", "jobs.specs"),
    ("batch.resume", "services"),
    # configuration raises the model gateway's validation error (LLMError) for a model
    ("config.model_capabilities", "llm.errors"),
}
KNOWN_CIRCLES = {
    # the prompt registry imports the prompt modules to register them; they import it
    frozenset({"prompts.criteria", "prompts.indexer", "prompts.registry", "prompts.screening"}),
    # the container builds the runner and sessions; jobs and capabilities take the container
    frozenset(
        [
            "batch.job_process",
            "batch.resume",
            "decisions.service",
            "decisions.sessions",
            "indexer.jobs",
            "jobs",
            "jobs.budget",
            "jobs.submit",
            "screening.jobs",
            "services",
        ]
    ),
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


def _imports(path: Path) -> set[str]:
    found: set[str] = set()

    def visit(nodes: list[ast.stmt]) -> None:
        for node in nodes:
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
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


def _layer(module: str) -> int:
    return LAYERS[module.split(".")[0]]


def test_every_package_has_a_layer() -> None:
    assert {m.split(".")[0] for m in MODULES if m} <= set(LAYERS)


def test_no_module_imports_from_a_layer_above_its_own() -> None:
    upward = {(a, b) for a, bs in GRAPH.items() for b in bs if a and _layer(b) > _layer(a)}
    assert upward - KNOWN_UPWARD == set(), "new upward imports"
    assert KNOWN_UPWARD - upward == set(), "fixed: remove these from KNOWN_UPWARD"


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


def test_no_new_import_circles() -> None:
    circles = set(_circles())
    assert circles - KNOWN_CIRCLES == set(), "new import circles"
    assert KNOWN_CIRCLES - circles == set(), "fixed: remove these from KNOWN_CIRCLES"
