"""What a stored screening job will run (written with ``model_dump``, read back with
``load_spec``; versioned by ``jobs/engine/spec.py``)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from crystallise.common.types import JobThreshold
from crystallise.jobs.engine.spec import JobSpec
from crystallise.screening.criteria import Criterion


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
