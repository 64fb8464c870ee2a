"""The base of every typed, versioned job spec: what a stored job will run, written with
``model_dump`` and read back with ``model_validate``. Each kind's spec lives beside its
capability (``screening/spec.py``, ``indexer/spec.py``).

``spec_version`` says which shape a stored spec has. Specs stored before the field existed
(version 0: the same keys, no version) load unchanged; a later release that changes a spec
adds an upgrade step to ``_UPGRADES`` so that every job stored by this release still loads.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, model_validator

from crystallise.prompts.registry import list_prompts

SPEC_VERSION = 1
# version n -> function that turns a stored spec of version n into version n + 1
_UPGRADES: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {
    0: lambda data: {**data, "spec_version": 1},
}


def prompt_versions(prefix: str) -> dict[str, str]:
    """Name -> version of every registered prompt of one service (``screening.``...)."""
    return {p.name: p.version for p in list_prompts() if p.name.startswith(prefix)}


class JobSpec(BaseModel):
    """Fields every job kind stores."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    spec_version: int = SPEC_VERSION
    model: str
    model_explicit: bool = False  # the caller named the model (retirement policy, issue 17)
    warnings: list[str] = Field(default_factory=list)
    prompt_versions: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _upgrade(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        version = int(data.get("spec_version", 0))
        if version > SPEC_VERSION:
            raise ValueError(
                f"job spec version {version} is newer than this release ({SPEC_VERSION})"
            )
        while version < SPEC_VERSION:
            data = _UPGRADES[version](data)
            version += 1
        return data


SpecT = TypeVar("SpecT", bound=JobSpec)


def load_spec(cls: type[SpecT], model: str, config: dict[str, Any]) -> SpecT:
    """The spec stored with a job (``config``); ``model`` is the job row's model column,
    which version-0 indexer specs kept outside the config."""
    return cls.model_validate({"model": model, **config})
