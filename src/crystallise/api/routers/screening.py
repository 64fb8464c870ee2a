"""AI Screening endpoints: create/poll/list/active/cancel/results and the cost estimate."""

from __future__ import annotations

import asyncio
from typing import Any, Literal

import orjson
from fastapi import APIRouter, Query
from fastapi.responses import Response
from pydantic import TypeAdapter

from crystallise.api.deps import ServicesDep, SubmissionDep
from crystallise.api.jobs_common import add_job_routes, get_job_or_404, iso
from crystallise.common.memory import collector_paused
from crystallise.common.types import INT32_MAX, THRESHOLD_MAX, THRESHOLD_MIN
from crystallise.db.jobs import ItemRow, JobRow
from crystallise.db.models import ScreeningJob
from crystallise.jobs.engine.usage import JobUsage
from crystallise.jobs.submit import (
    estimate_screening_job,
    submit_screening,
)
from crystallise.jobs.update import submit_update
from crystallise.screening import schemas as s
from crystallise.screening.assessment import with_reason
from crystallise.screening.prisma import prisma_counts, prisma_svg
from crystallise.screening.spec import ScreeningJobSpec

router = APIRouter(prefix="/screening", tags=["screening"])
# a failed job's partial results stay readable (and resumable with /retry)
_TERMINAL_WITH_RESULTS = ("completed", "cancelled", "failed")


def _summary(row: JobRow) -> s.ScreeningJobSummary:
    return s.ScreeningJobSummary(
        job_id=row.id,
        status=row.status,
        progress=row.progress,
        stage=row.stage,
        papers_count=row.item_count,
        model=row.model,
        project_id=row.project_id,
        duration_ms=row.duration_ms,
        estimated_cost_usd=row.estimated_cost_usd,
        created_at=iso(row.created_at) or "",
        completed_at=iso(row.completed_at),
    )


def _threshold(row: ScreeningJob) -> float:
    return row.spec(ScreeningJobSpec).threshold


def _job_view(row: ScreeningJob, items: list[ItemRow] | None) -> s.ScreeningJobResponse:
    """The poll answer: state always; results (with exclusion reasons at the job's
    threshold) and clusters once the job has ended."""
    threshold = _threshold(row)
    results = (
        [with_reason(s.ScreeningResult.of(i), threshold) for i in items if i.result is not None]
        if items is not None
        else None
    )
    ended = row.status in _TERMINAL_WITH_RESULTS
    return s.ScreeningJobResponse(
        job_id=row.id,
        status=row.status,
        progress=row.progress,
        stage=row.stage,
        results=results,
        clusters=row.clusters if ended else None,
        error=row.error,
        error_category=row.error_category,
        error_retryable=row.error_retryable,
        duration_ms=row.duration_ms,
        estimated_cost_usd=row.estimated_cost_usd,
        stage_timings=row.stage_timings,
        model=row.model,
        model_version=row.model_version,
        warnings=row.spec(ScreeningJobSpec).warnings or None,
        failed_count=sum(r.failed for r in results) if results is not None else None,
        errors=row.errors or None,
        papers_count=row.item_count,
        project_id=row.project_id,
        usage=JobUsage.of(row).shown("tally") or None,
        provider_batches=row.provider_batches or None,
        **_lineage(row),
        created_at=iso(row.created_at),
        completed_at=iso(row.completed_at),
    )


def _lineage(row: ScreeningJob) -> dict[str, Any]:
    """An update's origin and counts (reused: once the job has run)."""
    spec = row.spec(ScreeningJobSpec)
    if spec.update_of is None:
        return {}
    reused = JobUsage.of(row).reused_count
    return {"update_of": spec.update_of, "added_count": spec.added_count,
            "duplicate_count": spec.duplicate_count, "reused_count": reused}  # fmt: skip


@router.post("/jobs", response_model=s.JobCreated)
async def create_job(
    body: s.ScreeningRequest, services: ServicesDep, submission: SubmissionDep
) -> s.JobCreated:
    row = await submit_screening(services, body, submission)
    return s.JobCreated(job_id=row.id, status=row.status, progress=row.progress, stage=row.stage)


@router.get(
    "/jobs/{job_id}", response_model=s.ScreeningJobResponse, response_model_exclude_none=True
)
async def get_job(job_id: str, services: ServicesDep) -> s.ScreeningJobResponse | Response:
    row = await get_job_or_404(services, "screening", job_id)
    if row.status not in _TERMINAL_WITH_RESULTS:
        return _job_view(row, None)
    texts = await services.store.result_texts(job_id)
    body = await asyncio.to_thread(_finished_job_json, row, texts)
    return Response(body, media_type="application/json")


_RESULTS: TypeAdapter[list[s.ScreeningResult]] = TypeAdapter(list[s.ScreeningResult])


def _finished_job_json(row: ScreeningJob, texts: list[str]) -> bytes:
    """An ended job's poll answer, as `_job_view` and the response model would give it,
    encoded once: the results are validated and dumped by pydantic-core in one call each
    (not one model per result and a second pass by the framework)."""
    threshold = _threshold(row)
    head = _job_view(row, []).model_dump(mode="json", exclude_none=True)
    with collector_paused():
        stored = ",".join(t for t in texts if t != "null")  # a JSON null: no result yet
        results = _RESULTS.validate_json(f"[{stored}]")
        for result in results:
            with_reason(result, threshold)
        head["failed_count"] = sum(r.failed for r in results)
        dumped = _RESULTS.dump_json(results, exclude_none=True)
        del results
    head["results"] = orjson.Fragment(dumped)
    return orjson.dumps(head)


@router.get("/jobs/{job_id}/results", response_model=s.ResultsPage)
async def results_page(
    job_id: str,
    services: ServicesDep,
    offset: int = Query(0, ge=0, le=INT32_MAX),
    limit: int = Query(500, ge=1, le=5000),
) -> s.ResultsPage:
    row = await get_job_or_404(services, "screening", job_id)
    page = await services.store.result_page(job_id, offset, limit)
    threshold = _threshold(row)
    results = [with_reason(s.ScreeningResult.of(i), threshold) for i in page]
    for item, result in zip(page, results, strict=True):
        result.status = item.status
    return s.ResultsPage(
        job_id=job_id, offset=offset, limit=limit, total=row.item_count, results=results
    )


@router.post("/estimate", response_model=s.EstimateResponse, response_model_exclude_none=True)
def estimate(body: s.EstimateRequest, services: ServicesDep) -> s.EstimateResponse:
    return estimate_screening_job(services, body)


@router.post("/jobs/{job_id}/update", response_model=s.JobUpdated)
async def update_job(
    job_id: str, body: s.UpdateRequest, services: ServicesDep, submission: SubmissionDep
) -> s.JobUpdated:
    """A new job with the old papers and the new ones (deduplicated against the old by DOI,
    PMID, title + year); the old job's options apply, old papers reuse their results."""
    row, lineage = await submit_update(services, job_id, body.papers, submission)
    reused = await services.store.count_reusable_for(row.id)
    return s.JobUpdated(
        job_id=row.id, status=row.status, progress=row.progress, stage=row.stage,
        reused_count=reused, **lineage,
    )  # fmt: skip


@router.get("/jobs/{job_id}/prisma", response_model=s.PrismaCounts)
async def prisma(
    job_id: str,
    services: ServicesDep,
    threshold: float | None = Query(
        None, ge=THRESHOLD_MIN, le=THRESHOLD_MAX, description="default: the job's"
    ),
    format: Literal["json", "svg"] = Query("json"),
) -> Any:
    """The screening part of the PRISMA 2020 flow: records screened, excluded (in all and by
    reason), included at the threshold, duplicates flagged, failed; ``format=svg`` draws it."""
    row = await get_job_or_404(services, "screening", job_id)
    items = await services.store.all_items(job_id)
    counts = prisma_counts(items, _threshold(row) if threshold is None else threshold)
    if format == "svg":
        return Response(prisma_svg(counts), media_type="image/svg+xml")
    return s.PrismaCounts(job_id=job_id, **counts)


add_job_routes(router, "screening", _summary, s.ScreeningJobSummary)
