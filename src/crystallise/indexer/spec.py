"""What a stored indexer job will run (versioned by ``jobs/engine/spec.py``)."""

from __future__ import annotations

from pydantic import Field

from crystallise.indexer.schemas import IndexerField, ProjectContext
from crystallise.jobs.engine.spec import JobSpec


class IndexerJobSpec(JobSpec):
    fields: list[IndexerField]
    project_context: ProjectContext | None = None
    system_prompt: str | None = None  # admin override of the extraction rules (config API)
    mode: str = "full"
    max_workers: int = Field(4, ge=1)
