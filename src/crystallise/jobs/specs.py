"""Typed, versioned job specs: what a stored job will run, written with ``model_dump`` and
read back with ``model_validate``.

``spec_version`` says which shape a stored spec has. Specs stored before the field existed
(version 0: the same keys, no version) load unchanged; a later release that changes a spec
adds an upgrade step to ``_UPGRADES`` so that every job stored by this release still loads.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, model_validator

from crystallise.common.types import JobThreshold
from crystallise.indexer.schemas import IndexerField, ProjectContext
from crystallise.prompts.registry import list_prompts
from crystallise.screening.criteria import Criterion

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


class ScreeningJobSpec(JobSpec):
    criteria: list[Criterion]
    questions: list[str] = Field(default_factory=list)
    clustering_model: str
    # None (jobs stored before it existed): the clustering model, as they were priced
    assignment_model: str | None = None
    repetitions: int = Field(ge=1)
    threshold: JobThreshold
    clusters_type: Literal["include", "exclude"] | None = None
    label_system: str | None = None  # admin override of the labelling rubric (config API)
    temperature: float | None = None  # from the service config; default sampling when None
    scoring: Literal["samples", "distribution"] = "samples"  # screening/scoring.py
    batch: bool = False  # labelling and reasoning through the Batch API (provider_batch.py)
    reuse: bool = True  # reuse results of the same papers and setup (screening/reuse.py)
    # an update (jobs/update.py): the job it updates, papers added, duplicates of old papers
    update_of: str | None = None
    added_count: int | None = None
    duplicate_count: int | None = None


class IndexerJobSpec(JobSpec):
    fields: list[IndexerField]
    project_context: ProjectContext | None = None
    system_prompt: str | None = None  # admin override of the extraction rules (config API)
    mode: str = "full"
    max_workers: int = Field(4, ge=1)


SpecT = TypeVar("SpecT", bound=JobSpec)


def load_spec(cls: type[SpecT], model: str, config: dict[str, Any]) -> SpecT:
    """The spec stored with a job (``config``); ``model`` is the job row's model column,
    which version-0 indexer specs kept outside the config."""
    return cls.model_validate({"model": model, **config})
