"""Resume a finished job: run only its items that are not done, keeping what is stored
(results, spent usage). For failed and cancelled jobs, and completed jobs with failed items."""

from __future__ import annotations

from crystallise.db.jobs import JobKind, JobRow
from crystallise.errors import BadInput, Conflict, NotFound
from crystallise.llm.errors import ErrorCategory, LLMError
from crystallise.services import Services


def key_source(services: Services, mock: bool, request_key: str | None) -> str:
    """Where a job's OpenAI key comes from; rejects a real job that has none (401)."""
    if mock:
        return "none"
    if request_key:
        return "request"
    if services.settings.server_openai_key or not services.settings.is_openai_endpoint:
        return "server"  # a local server takes the client's placeholder key
    raise LLMError(
        "No OpenAI API key: send X-OpenAI-API-Key, set CRYSTALLISE_OPENAI_API_KEY, or use mock.",
        ErrorCategory.AUTH,
    )


async def retry_job(
    services: Services, kind: JobKind, job_id: str, request_key: str | None
) -> JobRow:
    """Reopen the job and dispatch it; 404 unknown, 409 running or nothing left to run."""
    row = await services.store.get_job(kind, job_id)
    if row is None:
        raise NotFound(f"Job not found: {job_id}")
    if row.status not in ("completed", "failed", "cancelled"):
        raise Conflict(f"Job {job_id} is {row.status}: only a finished job can be retried.")
    if row.key_source == "request" and not request_key:
        raise BadInput(
            f"X-OpenAI-API-Key: job {job_id} ran on the caller's own provider key; send one to "
            "retry it (a retry never moves a job onto the server's key)"
        )
    source = key_source(services, row.mock, request_key)
    key = request_key if source == "request" else None
    encrypted = services.secret_box.encrypt(key) if key and services.secret_box else None
    reopened, _runs = await services.store.reopen(
        kind, job_id, key_source=source, encrypted_openai_key=encrypted
    )
    if reopened is None or reopened.status != "pending":
        raise Conflict(f"Job {job_id} has no failed or unfinished items to retry.")
    await services.dispatcher.dispatch(kind, job_id, key)
    return reopened
