"""Helpers the two async-job routers share: timestamps, 404s, events and the shared routes."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from typing import Any, Literal, overload

from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel

from crystallise.api.deps import OpenAIKeyDep, ServicesDep
from crystallise.common.types import INT32_MAX, THRESHOLD_MAX, THRESHOLD_MIN
from crystallise.db.jobs import JobKind, JobRow, as_utc
from crystallise.db.models import IndexerJob, ScreeningJob
from crystallise.errors import NotFound
from crystallise.jobs.provenance import Provenance, provenance
from crystallise.jobs.resume import retry_job
from crystallise.records.export import ExportFormat
from crystallise.records.service import export_job
from crystallise.services import Services


def iso(value: datetime | None) -> str | None:
    value = as_utc(value)
    return value.isoformat().replace("+00:00", "Z") if value else None


@overload
async def get_job_or_404(
    services: Services, kind: Literal["screening"], job_id: str
) -> ScreeningJob: ...
@overload
async def get_job_or_404(
    services: Services, kind: Literal["indexer"], job_id: str
) -> IndexerJob: ...
@overload
async def get_job_or_404(services: Services, kind: JobKind, job_id: str) -> JobRow: ...
async def get_job_or_404(services: Services, kind: JobKind, job_id: str) -> JobRow:
    row = await services.store.get_job(kind, job_id)
    if row is None:
        raise NotFound(f"Job not found: {job_id}")
    return row


SSE_POLL_S = 0.5
SSE_KEEPALIVE_S = 15.0


# ---- live progress (server-sent events) ---------------------------------------------------
def _sse(event: str, data: dict[str, Any]) -> str:
    return f"event: {event}\ndata: {json.dumps(data)}\n\n"


async def job_events(
    services: Services, kind: JobKind, job_id: str, request: Request
) -> AsyncIterator[str]:
    """``progress`` and ``stage`` events as the job advances, then its terminal state."""
    last: tuple[Any, ...] | None = None
    last_stage: str | None = None
    last_sent = time.monotonic()
    while True:
        row = await services.store.get_job(kind, job_id)
        if row is None:
            yield _sse("error", {"detail": f"Job not found: {job_id}"})
            return
        state = {
            "job_id": row.id,
            "status": row.status,
            "progress": row.progress,
            "stage": row.stage,
        }
        if row.stage != last_stage and row.stage:
            yield _sse("stage", state)
            last_stage = row.stage
        if (row.status, row.progress, row.stage) != last:
            yield _sse("progress", state)
            last = (row.status, row.progress, row.stage)
            last_sent = time.monotonic()
        if row.status in ("completed", "failed", "cancelled"):
            final = {
                **state,
                "error": row.error,
                "error_category": row.error_category,
                "error_retryable": row.error_retryable,
                "duration_ms": row.duration_ms,
                "estimated_cost_usd": row.estimated_cost_usd,
            }
            yield _sse(row.status, {k: v for k, v in final.items() if v is not None})
            return
        if time.monotonic() - last_sent > SSE_KEEPALIVE_S:
            yield ": keep-alive\n\n"
            last_sent = time.monotonic()
        if await request.is_disconnected():
            return
        await asyncio.sleep(SSE_POLL_S)


async def event_stream(
    services: Services, kind: JobKind, job_id: str, request: Request
) -> StreamingResponse:
    await get_job_or_404(services, kind, job_id)
    return StreamingResponse(
        job_events(services, kind, job_id, request),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


def add_job_routes(
    router: APIRouter,
    kind: JobKind,
    summary: Callable[[JobRow], BaseModel],
    summary_model: Any,
) -> None:
    """The routes both async-job kinds share: list, active-job, cancel, events."""

    @router.get("/jobs", response_model=list[summary_model])  # type: ignore[valid-type]
    async def list_jobs(
        services: ServicesDep, limit: int = Query(50, ge=1, le=1000)
    ) -> list[BaseModel]:
        return [summary(r) for r in await services.store.list_jobs(kind, limit)]

    @router.get("/active-job", response_model=summary_model | None)
    async def active_job(
        services: ServicesDep, project_id: int = Query(..., ge=-(2**31), le=INT32_MAX)
    ) -> BaseModel | None:
        """The pending/running job of this project, or null (dedupe before starting one)."""
        row = await services.store.active_job(kind, project_id)
        return summary(row) if row else None

    @router.post("/jobs/{job_id}/cancel", response_model=summary_model)
    async def cancel_job(job_id: str, services: ServicesDep) -> BaseModel:
        """Stop starting calls; the job ends ``cancelled`` with its partial results kept."""
        await get_job_or_404(services, kind, job_id)
        await services.dispatcher.cancel(kind, job_id)
        return summary(await get_job_or_404(services, kind, job_id))

    @router.post("/jobs/{job_id}/retry", response_model=summary_model)
    async def retry(job_id: str, services: ServicesDep, key: OpenAIKeyDep) -> BaseModel:
        """Run again only the items that are not done (failed, cancelled or never run);
        stored results and the spent cost stay. 409 if the job is running or has none."""
        return summary(await retry_job(services, kind, job_id, key))

    @router.get("/jobs/{job_id}/provenance", response_model=Provenance)
    async def job_provenance(job_id: str, services: ServicesDep) -> Provenance:
        """Software and model versions, prompt versions, settings, counts, cost and a
        methods paragraph built from these facts (PRISMA 2020 item 8)."""
        return await provenance(services, kind, job_id)

    @router.get("/jobs/{job_id}/events")
    async def job_events_stream(
        job_id: str, request: Request, services: ServicesDep
    ) -> StreamingResponse:
        """Server-sent events: progress, stage changes and the terminal state."""
        return await event_stream(services, kind, job_id, request)

    add_export_route(router, kind)


def add_export_route(router: APIRouter, kind: JobKind) -> None:
    """GET .../jobs/{id}/export: the job's records with their results as a file."""

    @router.get("/jobs/{job_id}/export", response_class=StreamingResponse)
    async def export(
        job_id: str,
        services: ServicesDep,
        format: ExportFormat = Query("csv", description="ris, csv, jsonl or xlsx"),
        threshold: float | None = Query(
            None,
            ge=THRESHOLD_MIN,
            le=THRESHOLD_MAX,
            description="screening: include at final_score >= this",
        ),
    ) -> StreamingResponse:
        """Every record with its result, streamed (RIS keeps imported fields unchanged and
        adds the decision as N1 and KW; the CSV imports into ASReview as labelled data)."""
        row = await get_job_or_404(services, kind, job_id)
        out = export_job(services.jobs, kind, row, format, threshold)
        disposition = {"Content-Disposition": f'attachment; filename="{out.filename}"'}
        return StreamingResponse(out.chunks, media_type=out.media_type, headers=disposition)
