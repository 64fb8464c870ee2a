"""AutoIndexer endpoints: sync run, async jobs, estimate and the three helpers."""

from __future__ import annotations

from fastapi import APIRouter

from crystallise.api.deps import OpenAIKeyDep, ServicesDep, SubmissionDep
from crystallise.api.jobs_common import add_job_routes, get_job_or_404, iso
from crystallise.db.jobs import ItemRow, JobRow
from crystallise.indexer import helpers
from crystallise.indexer import schemas as s
from crystallise.indexer.pipeline import USAGE_KEYS
from crystallise.indexer.spec import IndexerJobSpec
from crystallise.jobs.engine.usage import JobUsage
from crystallise.jobs.submit import (
    estimate_indexing_job,
    run_indexing,
    submit_indexing,
)
from crystallise.llm.ask import HelperContext
from crystallise.services import Services

router = APIRouter(prefix="/indexer", tags=["indexer"])


@router.post("/run", response_model=s.IndexerRunResponse)
async def run(
    body: s.IndexerRequest, services: ServicesDep, key: OpenAIKeyDep
) -> s.IndexerRunResponse:
    """Extract synchronously (small batches); the model and key rules of a job apply."""
    return await run_indexing(services, body, key)


def _summary(row: JobRow) -> s.IndexerJobSummary:
    return s.IndexerJobSummary(
        job_id=row.id,
        status=row.status,
        progress=row.progress,
        model=row.model,
        record_count=row.item_count,
        project_id=row.project_id,
        duration_ms=row.duration_ms,
        estimated_cost_usd=row.estimated_cost_usd,
        created_at=iso(row.created_at) or "",
        completed_at=iso(row.completed_at),
    )


@router.post("/jobs", response_model=s.IndexerJobCreated)
async def create_job(
    body: s.IndexerRequest, services: ServicesDep, submission: SubmissionDep
) -> s.IndexerJobCreated:
    row = await submit_indexing(services, body, submission)
    return s.IndexerJobCreated(job_id=row.id, status=row.status, progress=row.progress)


def _job_view(row: JobRow, items: list[ItemRow]) -> s.IndexerJobResponse:
    shown = JobUsage.of(row).shown()
    usage = {k: v for k, v in shown.items() if k in (*USAGE_KEYS, "cost_per_paper_usd")}
    records = [i.result_as(s.IndexedRecord) for i in items]
    errors = row.errors
    if errors is None:
        errors = [
            f"Record {i.item_id}: {r.error if r else None}"
            for i, r in zip(items, records, strict=True)
            if i.status == "error"
        ]
    return s.IndexerJobResponse(
        job_id=row.id,
        status=row.status,
        progress=row.progress,
        stage=row.stage,
        partial_results=[r for r in records if r is not None],
        errors=errors,
        usage=usage or None,
        error=row.error,
        error_category=row.error_category,
        error_retryable=row.error_retryable,
        duration_ms=row.duration_ms,
        estimated_cost_usd=row.estimated_cost_usd,
        model_version=row.model_version,
        model=row.model,
        warnings=row.spec(IndexerJobSpec).warnings or None,
        created_at=iso(row.created_at),
        completed_at=iso(row.completed_at),
    )


@router.get("/jobs/{job_id}", response_model=s.IndexerJobResponse, response_model_exclude_none=True)
async def get_job(job_id: str, services: ServicesDep) -> s.IndexerJobResponse:
    row = await get_job_or_404(services, "indexer", job_id)
    return _job_view(row, await services.store.all_items(job_id, ["done", "error"]))


@router.post(
    "/estimate", response_model=s.IndexerEstimateResponse, response_model_exclude_none=True
)
def estimate(body: s.IndexerEstimateRequest, services: ServicesDep) -> s.IndexerEstimateResponse:
    return estimate_indexing_job(services, body)


def _helpers(services: Services, key: str | None) -> HelperContext:
    return HelperContext(services.llm, services.configs, key)


@router.post("/suggest-fields", response_model=s.SuggestFieldsResponse)
async def suggest_fields(
    body: s.SuggestFieldsRequest, services: ServicesDep, key: OpenAIKeyDep
) -> s.SuggestFieldsResponse:
    return await helpers.suggest_fields(_helpers(services, key), body)


@router.post("/refine-fields", response_model=s.RefineFieldsResponse)
async def refine_fields(
    body: s.RefineFieldsRequest, services: ServicesDep, key: OpenAIKeyDep
) -> s.RefineFieldsResponse:
    return await helpers.refine_fields(_helpers(services, key), body)


@router.post("/group-tags", response_model=s.GroupTagsResponse, response_model_exclude_none=True)
async def group_tags(
    body: s.GroupTagsRequest, services: ServicesDep, key: OpenAIKeyDep
) -> s.GroupTagsResponse:
    return await helpers.group_tags(_helpers(services, key), body)


add_job_routes(router, "indexer", _summary, s.IndexerJobSummary)
