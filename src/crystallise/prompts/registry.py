"""The prompt registry: every prompt the pipelines use, under a stable dotted name (§8).
Importing the prompt modules here registers their prompts (``prompts/base.py``)."""

from __future__ import annotations

from crystallise.prompts import criteria, indexer, screening  # noqa: F401  (they register)
from crystallise.prompts.base import REGISTERED, Prompt


def get_prompt(name: str) -> Prompt | None:
    return REGISTERED.get(name)


def list_prompts() -> list[Prompt]:
    return sorted(REGISTERED.values(), key=lambda p: p.name)
