"""AutoIndexer endpoints: sync run, async jobs, estimate and the three helpers."""

from __future__ import annotations

import asyncio
import uuid
from typing import Annotated

from fastapi import APIRouter, Header

from crystallise.api.deps import OpenAIKeyDep, ServicesDep
from crystallise.api.jobs_common import (
    add_job_routes,
    bad_request,
    create_and_dispatch,
    find_idempotent,
    get_job_or_404,
    iso,
    request_fingerprint,
)
from crystallise.batch.resume import key_source
from crystallise.config.model_capabilities import ModelChoice, choose_model
from crystallise.db.jobs import JobRow
from crystallise.indexer import helpers, mock
from crystallise.indexer import schemas as s
from crystallise.indexer.estimate import DISCLAIMER, estimate_indexing
from crystallise.indexer.pipeline import ExtractionContext, errors_of, process_records
from crystallise.services import Services

router = APIRouter(prefix="/indexer", tags=["indexer"])


def _model(services: Services, requested: str | None) -> ModelChoice:
    """The extraction model that will run (400 if unknown or refused)."""
    configured = services.configs.get("extraction").model
    return choose_model(services.settings, requested, configured, "extraction")


def _warnings(choice: ModelChoice) -> list[str] | None:
    return [choice.warning] if choice.warning else None


def _check_size(services: Services, body: s.IndexerRequest) -> None:
    if len(body.records) > services.settings.max_papers_per_job:
        raise bad_request(
            f"records: {len(body.records)} records exceed CRYSTALLISE_MAX_PAPERS_PER_JOB="
            f"{services.settings.max_papers_per_job}"
        )


@router.post("/run", response_model=s.IndexerRunResponse)
async def run(
    body: s.IndexerRequest, services: ServicesDep, key: OpenAIKeyDep
) -> s.IndexerRunResponse:
    _check_size(services, body)
    choice = _model(services, body.model)
    model = choice.model
    records = body.selected_records()
    if body.mock:
        results = [mock.mock_record(body.fields, r) for r in records]
        return s.IndexerRunResponse(
            results=results,
            errors=[],
            model_version="mock",
            model=model,
            warnings=_warnings(choice),
            usage={
                "input_tokens": 0,
                "output_tokens": 0,
                "total_tokens": 0,
                "estimated_cost_usd": 0.0,
            },
        )
    key_source(services, False, key)
    ctx = ExtractionContext(
        services.llm,
        model,
        body.fields,
        body.project_context,
        key,
        system_prompt=services.configs.system_override("extraction"),
    )
    results = await process_records(
        ctx, records, max_workers=body.max_workers, batch_size=body.batch_size
    )
    summary = ctx.tally.summary()
    usage = {
        k: summary[k]
        for k in ("input_tokens", "output_tokens", "total_tokens", "estimated_cost_usd")
    }
    return s.IndexerRunResponse(
        results=results,
        errors=errors_of(results),
        usage=usage,
        model_version=ctx.model_version,
        model=model,
        warnings=_warnings(choice),
    )


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
    body: s.IndexerRequest,
    services: ServicesDep,
    key: OpenAIKeyDep,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
) -> s.IndexerJobCreated:
    fingerprint = request_fingerprint(body)
    existing = find_idempotent(services, "indexer", idempotency_key, fingerprint)
    if existing is not None:
        return s.IndexerJobCreated(
            job_id=existing.id, status=existing.status, progress=existing.progress
        )
    _check_size(services, body)
    choice = _model(services, body.model)
    model = choice.model
    records = body.selected_records()
    source = key_source(services, body.mock, key)
    estimate = estimate_indexing(model, body.fields, len(records))
    job_id = str(uuid.uuid4())
    config = {
        "fields": [f.model_dump() for f in body.fields],
        "project_context": body.project_context.model_dump() if body.project_context else None,
        "system_prompt": services.configs.system_override("extraction"),
        "mode": body.mode,
        "max_workers": body.max_workers,
        "batch_size": body.batch_size,
        "model_explicit": choice.explicit,
        "warnings": _warnings(choice) or [],
    }
    row = await create_and_dispatch(
        services,
        "indexer",
        request_key=key if source == "request" else None,
        idempotency_key=idempotency_key,
        fingerprint=fingerprint,
        job_id=job_id,
        items=[(str(r["ID"]).strip(), r) for r in records],
        project_id=body.project_id,
        model=model,
        mock=body.mock,
        config=config,
        estimated_cost_usd=float(estimate["estimated_cost_usd"]),
        key_source=source,
    )
    return s.IndexerJobCreated(job_id=row.id, status=row.status, progress=row.progress)


@router.get("/jobs/{job_id}", response_model=s.IndexerJobResponse, response_model_exclude_none=True)
async def get_job(job_id: str, services: ServicesDep) -> s.IndexerJobResponse:
    row = get_job_or_404(services, "indexer", job_id)
    items = await asyncio.to_thread(
        lambda: list(services.jobs.iter_items(job_id, statuses=["done", "error"]))
    )
    usage = {
        k: v
        for k, v in (row.usage or {}).items()
        if k in ("input_tokens", "output_tokens", "total_tokens", "estimated_cost_usd")
    }
    errors = (
        row.errors
        if row.errors is not None
        else [
            f"Record {i.item_id}: {(i.result or {}).get('error')}"
            for i in items
            if i.status == "error"
        ]
    )
    return s.IndexerJobResponse(
        job_id=row.id,
        status=row.status,
        progress=row.progress,
        stage=row.stage,
        partial_results=[i.result for i in items if i.result is not None],
        errors=errors,
        usage=usage or None,
        error=row.error,
        error_category=row.error_category,
        error_retryable=row.error_retryable,
        duration_ms=row.duration_ms,
        estimated_cost_usd=row.estimated_cost_usd,
        model_version=row.model_version,
        model=row.model,
        warnings=(row.config or {}).get("warnings") or None,
        created_at=iso(row.created_at),
        completed_at=iso(row.completed_at),
    )


@router.post(
    "/estimate", response_model=s.IndexerEstimateResponse, response_model_exclude_none=True
)
def estimate(body: s.IndexerEstimateRequest, services: ServicesDep) -> s.IndexerEstimateResponse:
    choice = _model(services, body.model)
    figures = estimate_indexing(choice.model, body.fields, body.record_count)
    return s.IndexerEstimateResponse(
        model=choice.model,
        warnings=_warnings(choice),
        estimated_input_tokens=int(figures["estimated_input_tokens"]),
        estimated_output_tokens=int(figures["estimated_output_tokens"]),
        estimated_cost_usd=float(figures["estimated_cost_usd"]),
        disclaimer=DISCLAIMER,
    )


def _helpers(services: Services, key: str | None) -> helpers.HelperContext:
    return helpers.HelperContext(services.llm, services.configs, key)


@router.post("/suggest-fields", response_model=s.SuggestFieldsResponse)
async def suggest_fields(
    body: s.SuggestFieldsRequest, services: ServicesDep, key: OpenAIKeyDep
) -> s.SuggestFieldsResponse:
    if body.mock:
        return mock.suggest_fields()
    return await helpers.suggest_fields(_helpers(services, key), body)


@router.post("/refine-fields", response_model=s.RefineFieldsResponse)
async def refine_fields(
    body: s.RefineFieldsRequest, services: ServicesDep, key: OpenAIKeyDep
) -> s.RefineFieldsResponse:
    if body.mock:
        return mock.refine_fields(body)
    return await helpers.refine_fields(_helpers(services, key), body)


@router.post("/group-tags", response_model=s.GroupTagsResponse, response_model_exclude_none=True)
async def group_tags(
    body: s.GroupTagsRequest, services: ServicesDep, key: OpenAIKeyDep
) -> s.GroupTagsResponse:
    if body.mock:
        return mock.group_tags(body)
    return await helpers.group_tags(_helpers(services, key), body)


add_job_routes(router, "indexer", _summary, s.IndexerJobSummary)
