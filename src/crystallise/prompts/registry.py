"""The prompt registry: every prompt the pipelines use, under a stable dotted name (§8).
Importing the prompt modules here registers their prompts (``prompts/base.py``)."""

from __future__ import annotations

from pydantic import BaseModel

from crystallise.prompts import criteria, indexer, screening  # noqa: F401  (they register)
from crystallise.prompts.base import REGISTERED, Prompt


def get_prompt(name: str) -> Prompt | None:
    return REGISTERED.get(name)


def list_prompts() -> list[Prompt]:
    return sorted(REGISTERED.values(), key=lambda p: p.name)


class PromptInfo(BaseModel):
    """A registered prompt as ``GET /v1/config/prompts`` lists it."""

    name: str
    service: str
    description: str
    has_variables: bool
    system_or_user: str
    version: str


def prompt_infos() -> list[PromptInfo]:
    return [
        PromptInfo(
            name=p.name,
            service=p.service,
            description=p.description,
            has_variables=p.has_variables,
            system_or_user=p.system_or_user,
            version=p.version,
        )
        for p in list_prompts()
    ]
