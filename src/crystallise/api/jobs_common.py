"""Helpers the two async-job routers share: timestamps, key source, 404s."""

from __future__ import annotations

from datetime import datetime

from fastapi import HTTPException

from crystallise.db.jobs import JobKind, JobRow, as_utc
from crystallise.llm.errors import ErrorCategory, LLMError
from crystallise.services import Services


def iso(value: datetime | None) -> str | None:
    value = as_utc(value)
    return value.isoformat().replace("+00:00", "Z") if value else None


def key_source(services: Services, mock: bool, request_key: str | None) -> str:
    """Where the job's OpenAI key comes from; rejects a real job that has none (401)."""
    if mock:
        return "none"
    if request_key:
        return "request"
    if services.settings.server_openai_key:
        return "server"
    raise LLMError(
        "No OpenAI API key: send X-OpenAI-API-Key, set CRYSTALLISE_OPENAI_API_KEY, or use mock.",
        ErrorCategory.AUTH,
    )


def get_job_or_404(services: Services, kind: JobKind, job_id: str) -> JobRow:
    row = services.jobs.get_job(kind, job_id)
    if row is None:
        raise HTTPException(status_code=404, detail=f"Job not found: {job_id}")
    return row


def bad_request(message: str) -> HTTPException:
    return HTTPException(status_code=400, detail=message)
