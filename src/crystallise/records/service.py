"""The records library behind the HTTP routes and the CLI: export a stored job."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from crystallise.common.types import check_threshold
from crystallise.db.jobs import JobKind, JobRow, JobStore
from crystallise.db.models import ScreeningJob
from crystallise.indexer.spec import IndexerJobSpec
from crystallise.records.export import (
    MEDIA_TYPES,
    ExportFormat,
    ExportPlan,
    ExportSummary,
    stream,
)
from crystallise.screening.schemas import ReasonCluster
from crystallise.screening.spec import ScreeningJobSpec


@dataclass
class Export:
    """A streamed export: the bytes, their media type and a file name for the download."""

    chunks: Iterator[bytes]
    media_type: str
    filename: str


def export_plan(kind: JobKind, row: JobRow, threshold: float | None) -> ExportPlan:
    """The columns and decision rule of one job's export (the job's threshold by default)."""
    if kind == "indexer":
        spec = row.spec(IndexerJobSpec)
        return ExportPlan("indexer", fields=[f.name for f in spec.fields])
    screening = row.spec(ScreeningJobSpec)
    check_threshold(threshold, "threshold")
    themes = ReasonCluster.of(row) if isinstance(row, ScreeningJob) else []
    clusters = {c.cluster_id: c.label for c in themes}
    return ExportPlan(
        "screening",
        threshold=screening.threshold if threshold is None else threshold,
        repetitions=screening.repetitions,
        clusters=clusters,
        criteria=[c.id for c in screening.criteria],
    )


def export_job(
    jobs: JobStore,
    kind: JobKind,
    row: JobRow,
    fmt: ExportFormat,
    threshold: float | None = None,
    summary: ExportSummary | None = None,
) -> Export:
    """Every record of the job with its result, read page by page while it is written
    (and counted into ``summary`` as it goes, when one is given)."""
    plan = export_plan(kind, row, threshold)
    chunks = stream(jobs.iter_items(row.id), plan, fmt, summary)
    return Export(chunks, MEDIA_TYPES[fmt], f"{kind}-{row.id}.{fmt}")
