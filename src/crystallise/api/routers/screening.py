"""AI Screening endpoints: create/poll/list/active/cancel/results and the cost estimate."""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query

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
from crystallise.common.types import INT32_MAX
from crystallise.config.model_capabilities import ModelChoice, choose_model
from crystallise.db.jobs import JobRow
from crystallise.llm.tokens import estimate_text_tokens
from crystallise.prompts import screening as screening_prompts
from crystallise.screening import schemas as s
from crystallise.screening.criteria import normalise_criteria
from crystallise.screening.estimate import DISCLAIMER, estimate_screening, format_usd
from crystallise.services import Services

router = APIRouter(prefix="/screening", tags=["screening"])
# a failed job's partial results stay readable (and resumable with /retry)
_TERMINAL_WITH_RESULTS = ("completed", "cancelled", "failed")


def _models(services: Services, requested: str | None) -> tuple[ModelChoice, ModelChoice]:
    """The labelling and clustering models that will run (400 if unknown or refused)."""
    settings, configs = services.settings, services.configs
    main = choose_model(settings, requested, configs.get("screening").model, "screening")
    clustering = configs.get("screening.clustering").model
    return main, choose_model(settings, None, clustering, "screening.clustering")


def _warnings(*choices: ModelChoice) -> list[str] | None:
    return [c.warning for c in choices if c.warning] or None


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


def _results(services: Services, job_id: str) -> list[dict[str, Any]]:
    return [i.result for i in services.jobs.iter_items(job_id) if i.result is not None]


@router.post("/jobs", response_model=s.JobCreated)
async def create_job(
    body: s.ScreeningRequest,
    services: ServicesDep,
    key: OpenAIKeyDep,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
) -> s.JobCreated:
    fingerprint = request_fingerprint(body)
    existing = find_idempotent(services, "screening", idempotency_key, fingerprint)
    if existing is not None:
        return _created(existing)
    settings = services.settings
    if len(body.papers) > settings.max_papers_per_job:
        raise bad_request(
            f"papers: {len(body.papers)} papers exceed CRYSTALLISE_MAX_PAPERS_PER_JOB="
            f"{settings.max_papers_per_job}; split the job."
        )
    main, clustering = _models(services, body.model)
    model, clustering_model = main.model, clustering.model
    criteria = normalise_criteria(body.criteria)
    paper_tokens = sum(estimate_text_tokens(p.title + " " + p.abstract) for p in body.papers)
    estimate = estimate_screening(
        model=model,
        clustering_model=clustering_model,
        papers_count=len(body.papers),
        repetitions=body.repetitions,
        criteria_count=len(criteria),
        paper_tokens_total=paper_tokens,
        allow_unknown=settings.allow_unknown_models,
    )
    cost = float(estimate["estimated_cost_usd"])
    if body.max_estimated_cost_usd is not None and cost > body.max_estimated_cost_usd:
        raise bad_request(
            f"Estimated cost {format_usd(cost)} exceeds max_estimated_cost_usd="
            f"{format_usd(body.max_estimated_cost_usd)}"
        )
    source = key_source(services, body.mock, key)
    job_id = str(uuid.uuid4())
    config = {
        "criteria": [asdict(c) for c in criteria],
        "questions": body.questions,
        "model": model,
        "model_explicit": main.explicit,
        "clustering_model": clustering_model,
        "warnings": _warnings(main, clustering) or [],
        "repetitions": body.repetitions,
        "threshold": body.threshold,
        "clusters_type": body.clusters_type,
        # snapshot of admin tuning (config API) so the job is reproducible and resumable
        "label_system": services.configs.system_override("screening"),
        "temperature": services.configs.get("screening").temperature,
        "prompt_versions": {
            p.name: p.version
            for p in (
                screening_prompts.LABELLING,
                screening_prompts.REASONING,
                screening_prompts.THEME_GENERATION,
                screening_prompts.ASSIGNMENT,
            )
        },
    }
    label_system = config["label_system"]
    if isinstance(label_system, str):
        versions: dict[str, str] = config["prompt_versions"]  # type: ignore[assignment]
        versions["screening.labelling"] = (
            "override-" + hashlib.sha256(label_system.encode()).hexdigest()[:12]
        )
    row = await create_and_dispatch(
        services,
        "screening",
        request_key=key if source == "request" else None,
        idempotency_key=idempotency_key,
        fingerprint=fingerprint,
        job_id=job_id,
        items=[(p.id, p.model_dump()) for p in body.papers],
        project_id=body.project_id,
        model=model,
        mock=body.mock,
        config=config,
        estimated_cost_usd=cost,
        key_source=source,
    )
    if row.id != job_id:  # a concurrent request with the same Idempotency-Key created it
        return _created(row)
    return s.JobCreated(job_id=job_id, status="pending", progress=0.0, stage="")


def _created(row: JobRow) -> s.JobCreated:
    return s.JobCreated(job_id=row.id, status=row.status, progress=row.progress, stage=row.stage)


@router.get(
    "/jobs/{job_id}", response_model=s.ScreeningJobResponse, response_model_exclude_none=True
)
async def get_job(job_id: str, services: ServicesDep) -> s.ScreeningJobResponse:
    row = get_job_or_404(services, "screening", job_id)
    results = failed = None
    if row.status in _TERMINAL_WITH_RESULTS:
        results = await asyncio.to_thread(_results, services, job_id)
        failed = sum(1 for r in results if "error" in r)
    usage = {k: v for k, v in (row.usage or {}).items() if k != "tally"} or None
    return s.ScreeningJobResponse(
        job_id=row.id,
        status=row.status,
        progress=row.progress,
        stage=row.stage,
        results=results,
        clusters=row.clusters if row.status in _TERMINAL_WITH_RESULTS else None,  # type: ignore[union-attr]
        error=row.error,
        error_category=row.error_category,
        error_retryable=row.error_retryable,
        duration_ms=row.duration_ms,
        estimated_cost_usd=row.estimated_cost_usd,
        stage_timings=row.stage_timings,  # type: ignore[union-attr]
        model=row.model,
        model_version=row.model_version,
        warnings=(row.config or {}).get("warnings") or None,
        failed_count=failed,
        errors=row.errors or None,
        papers_count=row.item_count,
        project_id=row.project_id,
        usage=usage,
        created_at=iso(row.created_at),
        completed_at=iso(row.completed_at),
    )


@router.get("/jobs/{job_id}/results", response_model=s.ResultsPage)
def results_page(
    job_id: str,
    services: ServicesDep,
    offset: int = Query(0, ge=0, le=INT32_MAX),
    limit: int = Query(500, ge=1, le=5000),
) -> s.ResultsPage:
    row = get_job_or_404(services, "screening", job_id)
    page = services.jobs.result_page(job_id, offset, limit)
    return s.ResultsPage(
        job_id=job_id,
        offset=offset,
        limit=limit,
        total=row.item_count,
        results=[{"id": i.item_id, "status": i.status, **(i.result or {})} for i in page],
    )


@router.post("/estimate", response_model=s.EstimateResponse, response_model_exclude_none=True)
def estimate(body: s.EstimateRequest, services: ServicesDep) -> s.EstimateResponse:
    main, clustering = _models(services, body.model)
    model = main.model
    figures = estimate_screening(
        model=model,
        clustering_model=clustering.model,
        papers_count=body.papers_count,
        repetitions=body.repetitions,
        criteria_count=body.criteria_count,
        allow_unknown=services.settings.allow_unknown_models,
    )
    return s.EstimateResponse(
        estimated_input_tokens=int(figures["estimated_input_tokens"]),
        estimated_output_tokens=int(figures["estimated_output_tokens"]),
        estimated_cost_usd=float(figures["estimated_cost_usd"]),
        model=model,
        warnings=_warnings(main, clustering),
        papers_count=body.papers_count,
        repetitions=body.repetitions,
        disclaimer=DISCLAIMER,
    )


add_job_routes(router, "screening", _summary, s.ScreeningJobSummary)
