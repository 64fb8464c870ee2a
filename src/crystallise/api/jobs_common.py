"""Helpers the two async-job routers share: timestamps, key source, 404s."""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from typing import Any

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel
from sqlalchemy.exc import IntegrityError

from crystallise.api.deps import OpenAIKeyDep, ServicesDep
from crystallise.batch.resume import retry_job
from crystallise.common.types import INT32_MAX
from crystallise.db.jobs import JobKind, JobRow, as_utc
from crystallise.services import Services


def iso(value: datetime | None) -> str | None:
    value = as_utc(value)
    return value.isoformat().replace("+00:00", "Z") if value else None


def get_job_or_404(services: Services, kind: JobKind, job_id: str) -> JobRow:
    row = services.jobs.get_job(kind, job_id)
    if row is None:
        raise HTTPException(status_code=404, detail=f"Job not found: {job_id}")
    return row


def bad_request(message: str) -> HTTPException:
    return HTTPException(status_code=400, detail=message)


# ---- creation: idempotency, key encryption, dispatch -------------------------------------
MAX_IDEMPOTENCY_KEY = 255
SSE_POLL_S = 0.5
SSE_KEEPALIVE_S = 15.0


def request_fingerprint(body: BaseModel) -> str:
    """Hash of the request body: the same Idempotency-Key must come with the same body."""
    return hashlib.sha256(body.model_dump_json().encode()).hexdigest()


def _same_or_conflict(row: JobRow, fingerprint: str) -> JobRow:
    if row.request_hash != fingerprint:
        raise HTTPException(
            status_code=409,
            detail="Idempotency-Key was already used with a different request body.",
        )
    return row


def find_idempotent(
    services: Services, kind: JobKind, key: str | None, fingerprint: str
) -> JobRow | None:
    """The job an earlier request with this Idempotency-Key created (409 if the body differs)."""
    if key is None:
        return None
    if not key.strip() or len(key) > MAX_IDEMPOTENCY_KEY:
        raise bad_request(f"Idempotency-Key must be 1-{MAX_IDEMPOTENCY_KEY} characters")
    row = services.jobs.find_by_idempotency_key(kind, key)
    return _same_or_conflict(row, fingerprint) if row is not None else None


async def create_and_dispatch(
    services: Services,
    kind: JobKind,
    *,
    request_key: str | None,
    idempotency_key: str | None,
    fingerprint: str,
    **job: Any,
) -> JobRow:
    """Store the job (its per-request key only encrypted, if a secret is set) and start it."""
    encrypted = (
        services.secret_box.encrypt(request_key)
        if request_key and services.secret_box is not None
        else None
    )
    try:
        row = await asyncio.to_thread(
            services.jobs.create_job,
            kind,
            idempotency_key=idempotency_key,
            request_hash=fingerprint,
            encrypted_openai_key=encrypted,
            **job,
        )
    except IntegrityError:
        # a concurrent request with the same Idempotency-Key won the race
        existing = services.jobs.find_by_idempotency_key(kind, idempotency_key or "")
        if existing is None:
            raise
        return _same_or_conflict(existing, fingerprint)
    await services.dispatcher.dispatch(kind, row.id, request_key)
    return row


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
        row = await asyncio.to_thread(services.jobs.get_job, kind, job_id)
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


def event_stream(
    services: Services, kind: JobKind, job_id: str, request: Request
) -> StreamingResponse:
    get_job_or_404(services, kind, job_id)
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
    def list_jobs(services: ServicesDep, limit: int = Query(50, ge=1, le=1000)) -> list[BaseModel]:
        return [summary(r) for r in services.jobs.list_jobs(kind, limit)]

    @router.get("/active-job", response_model=summary_model | None)
    def active_job(
        services: ServicesDep, project_id: int = Query(..., ge=-(2**31), le=INT32_MAX)
    ) -> BaseModel | None:
        """The pending/running job of this project, or null (dedupe before starting one)."""
        row = services.jobs.active_job(kind, project_id)
        return summary(row) if row else None

    @router.post("/jobs/{job_id}/cancel", response_model=summary_model)
    def cancel_job(job_id: str, services: ServicesDep) -> BaseModel:
        """Stop starting calls; the job ends ``cancelled`` with its partial results kept."""
        get_job_or_404(services, kind, job_id)
        services.runner.cancel(kind, job_id)
        return summary(get_job_or_404(services, kind, job_id))

    @router.post("/jobs/{job_id}/retry", response_model=summary_model)
    async def retry(job_id: str, services: ServicesDep, key: OpenAIKeyDep) -> BaseModel:
        """Run again only the items that are not done (failed, cancelled or never run);
        stored results and the spent cost stay. 409 if the job is running or has none."""
        return summary(await retry_job(services, kind, job_id, key))

    @router.get("/jobs/{job_id}/events")
    def job_events_stream(
        job_id: str, request: Request, services: ServicesDep
    ) -> StreamingResponse:
        """Server-sent events: progress, stage changes and the terminal state."""
        return event_stream(services, kind, job_id, request)
