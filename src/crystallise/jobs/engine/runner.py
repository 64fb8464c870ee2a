"""The job runner: drives registered job functions to a terminal state.

Job state lives in the database (through the async ``AsyncJobStore``: no call blocks the
event loop); this runner only drives it. A per-request OpenAI key stays in this process's
memory for the job's lifetime and is never written anywhere unencrypted, so a job that
needs one and has no encrypted copy cannot resume after a restart (it fails
``server_restart``).
"""

from __future__ import annotations

import asyncio
import contextvars
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from crystallise.common import metrics, tracing
from crystallise.common.logging import get_logger
from crystallise.common.secrets import SecretBox
from crystallise.db.async_jobs import AsyncJobStore
from crystallise.db.jobs import JOB_KINDS, JobKind, JobRow, as_utc, utcnow
from crystallise.jobs.engine.usage import JobUsage
from crystallise.jobs.engine.writer import ItemWriter
from crystallise.llm.errors import ErrorCategory, LLMError
from crystallise.tenancy import Caller, current_caller, job_owner, month_start

log = get_logger(__name__)
PROGRESS_MIN_INTERVAL_S = 0.25
CANCEL_POLL_INTERVAL_S = 1.0
USAGE_SAVE_INTERVAL_S = 2.0
TERMINAL = ("completed", "failed", "cancelled")


class JobCancelled(Exception):
    """Raised inside a job function when its job was cancelled."""


@dataclass(frozen=True)
class JobOutcome:
    """What a finished job function stores with ``status=completed``: the job row's columns
    it sets (None: left as they are)."""

    stage: str | None = None
    usage: JobUsage | None = None
    estimated_cost_usd: float | None = None
    model_version: str | None = None
    errors: list[str] | None = None
    clusters: list[dict[str, Any]] | None = None  # screening
    stage_timings: dict[str, int] | None = None  # screening

    def columns(self) -> dict[str, Any]:
        values = {k: v for k, v in vars(self).items() if v is not None}
        if self.usage is not None:
            values["usage"] = self.usage.stored()
        return values


@dataclass
class JobContext:
    """What a job function receives: its row, the store, its key, progress and cancel."""

    kind: JobKind
    job_id: str
    store: AsyncJobStore
    request_key: str | None
    cancel_event: asyncio.Event
    row: JobRow | None = None
    writer: ItemWriter = field(init=False)
    _last_progress: float = 0.0
    _last_usage: float = 0.0
    _stage: str = ""
    _stage_span: Any = None
    stop_reason: str | None = None  # set when the runner stops the job (its tenant's budget)

    def __post_init__(self) -> None:
        self.writer = ItemWriter(self.store, self.job_id)

    def end_stage(self) -> None:
        """Close the current stage's trace span (a new stage, or the job's end)."""
        if self._stage_span is not None:
            self._stage_span.end()
            self._stage_span = None

    async def report(
        self, progress: float, stage: str | None = None, *, force: bool = False
    ) -> None:
        """Write progress (throttled) and stage (always) for pollers."""
        now = time.monotonic()
        stage_changed = stage is not None and stage != self._stage
        if not (force or stage_changed or now - self._last_progress >= PROGRESS_MIN_INTERVAL_S):
            return
        self._last_progress = now
        values: dict[str, Any] = {"progress": round(min(max(progress, 0.0), 1.0), 4)}
        if stage is not None:
            if stage_changed:
                self.end_stage()
                self._stage_span = tracing.tracer.start_span(f"crystallise.stage {stage}")
            self._stage = stage
            values["stage"] = stage
        await self.store.update_job(self.kind, self.job_id, **values)

    async def save_usage(
        self, usage: JobUsage, model_version: str | None, *, force: bool = False
    ) -> None:
        """Store the usage tally so far (throttled): a crash or failure keeps what was spent."""
        now = time.monotonic()
        if force or now - self._last_usage >= USAGE_SAVE_INTERVAL_S:
            self._last_usage = now
            await self.store.update_job(
                self.kind, self.job_id, usage=usage.stored(), model_version=model_version
            )

    def cancelled(self) -> bool:
        """True once cancel was requested (here, or in the database: the runner's watcher
        checks the stored flag every second)."""
        return self.cancel_event.is_set()

    def raise_if_cancelled(self) -> None:
        if self.cancelled():
            raise JobCancelled()


JobFunction = Callable[[JobContext], Awaitable[JobOutcome]]


class JobRunner:
    """Runs registered job functions and records their terminal state.

    ``submit`` runs a job as a task of this process; ``execute`` runs one to completion and
    is what a queue worker awaits. State lives in the database, so any process can resume.
    """

    def __init__(
        self,
        store: AsyncJobStore,
        handlers: dict[str, JobFunction] | None = None,
        *,
        secret_box: SecretBox | None = None,
        heartbeat_s: float = 5.0,
        budget_for: Callable[[str], float | None] = lambda tenant: None,
    ) -> None:
        self.store = store
        self.budget_for = budget_for  # a tenant's monthly budget on the server's key
        self.handlers: dict[str, JobFunction] = dict(handlers or {})
        self.secret_box = secret_box
        self.heartbeat_s = heartbeat_s
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._cancel: dict[str, asyncio.Event] = {}
        self._keys: dict[str, str] = {}

    def register(self, kind: JobKind, handler: JobFunction) -> None:
        self.handlers[kind] = handler

    def submit(self, kind: JobKind, job_id: str, request_key: str | None = None) -> None:
        """Start the job in the background of this process."""
        if request_key:
            self._keys[job_id] = request_key
        if job_id not in self._tasks:
            self._start(kind, job_id)

    def _start(self, kind: JobKind, job_id: str) -> None:
        # a fresh context: the job must not write into the creating request's state
        task = asyncio.get_running_loop().create_task(
            self.execute(kind, job_id), context=contextvars.Context()
        )
        self._tasks[job_id] = task
        task.add_done_callback(lambda _: self._forget(job_id))

    def _forget(self, job_id: str) -> None:
        self._tasks.pop(job_id, None)
        self._cancel.pop(job_id, None)
        self._keys.pop(job_id, None)  # the per-request key dies with the job

    def running(self, job_id: str) -> bool:
        return job_id in self._tasks

    async def cancel(self, kind: JobKind, job_id: str) -> None:
        """Request cancellation: the job stops starting new calls and ends ``cancelled``.

        The flag is stored, so a job running in another process sees it within a second.
        """
        row = await self.store.request_cancel(kind, job_id)
        if row is not None and row.status == "pending" and job_id not in self._tasks:
            await self._finish_cancelled(kind, job_id)
        self.signal_cancel(job_id)

    def signal_cancel(self, job_id: str) -> None:
        event = self._cancel.get(job_id)
        if event is not None:
            event.set()

    async def resume_unfinished(self) -> list[str]:
        """Single-process start-up: continue every pending/running job from its checkpoint."""
        resumed: list[str] = []
        for kind in JOB_KINDS:
            if kind not in self.handlers:
                continue
            for row in await self.store.unfinished_jobs(kind):
                if row.id in self._tasks:
                    continue
                if row.key_source == "request" and self._request_key(row) is None:
                    await self.fail_server_restart(kind, row.id)
                    continue
                self._start(kind, row.id)
                resumed.append(row.id)
        if resumed:
            log.info("jobs_resumed", count=len(resumed))
        return resumed

    async def fail_orphaned(self, stale_after_s: float) -> int:
        """Fail jobs whose per-request key lived only in a process that went silent."""
        failed = 0
        cutoff = utcnow().timestamp() - stale_after_s
        for kind in JOB_KINDS:
            for row in await self.store.unfinished_jobs(kind):
                updated = as_utc(row.updated_at)
                if (
                    row.key_source == "request"
                    and not row.encrypted_openai_key
                    and row.id not in self._tasks
                    and updated is not None
                    and updated.timestamp() < cutoff
                ):
                    await self.fail_server_restart(kind, row.id)
                    failed += 1
        return failed

    async def fail_server_restart(self, kind: JobKind, job_id: str) -> None:
        """End a job whose per-request key is gone (integration contract: re-submit)."""
        await self.store.update_job(
            kind,
            job_id,
            status="failed",
            error="The server restarted and the job's per-request OpenAI key is gone; "
            "re-submit the job.",
            error_category="server_restart",
            error_retryable=True,
            completed_at=utcnow(),
            encrypted_openai_key=None,
        )

    async def shutdown(self) -> None:
        """Stop running tasks; their jobs stay ``running`` and resume on next start."""
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def wait(self, job_id: str, timeout: float | None = None) -> None:
        task = self._tasks.get(job_id)
        if task is not None:
            await asyncio.wait_for(asyncio.shield(task), timeout)

    def _request_key(self, row: JobRow) -> str | None:
        """The job's per-request key: in this process's memory, or decrypted from the row."""
        if row.id in self._keys:
            return self._keys[row.id]
        if row.encrypted_openai_key and self.secret_box is not None:
            return self.secret_box.decrypt(row.encrypted_openai_key)
        return None

    async def _watch(self, ctx: JobContext) -> None:
        """While the job runs here: see a stored cancel within a second, touch
        ``updated_at`` every heartbeat so that other processes can tell it is alive, and stop
        a server-key job once its tenant's spend this month passes the tenant's budget."""
        kind, job_id, event = ctx.kind, ctx.job_id, ctx.cancel_event
        last_beat = time.monotonic()
        while True:
            await asyncio.sleep(CANCEL_POLL_INTERVAL_S)
            if await self.store.is_cancel_requested(kind, job_id):
                event.set()
            if time.monotonic() - last_beat >= self.heartbeat_s:
                last_beat = time.monotonic()
                await self.store.update_job(kind, job_id)
                ctx.stop_reason = ctx.stop_reason or await self._over_budget(ctx.row)
                if ctx.stop_reason:
                    event.set()

    async def _over_budget(self, row: JobRow | None) -> str | None:
        budget = self.budget_for(row.tenant) if row is not None else None
        if row is None or budget is None or row.key_source != "server" or row.mock:
            return None
        figures = (await self.store.spend(month_start(), row.tenant)).get(row.tenant, {})
        spent = figures.get("spent_usd", 0.0)
        if spent <= budget:
            return None
        return (
            f"Stopped at the budget: tenant '{row.tenant}' has spent ${spent:.4f} this month "
            f"(UTC) against a budget of ${budget:.4f}; the results so far are kept, and /retry "
            "resumes the job once the budget allows"
        )

    # ---- one job ---------------------------------------------------------------
    async def execute(self, kind: JobKind, job_id: str) -> None:
        """Run one job to a terminal state (or until this process stops). Idempotent."""
        row = await self.store.get_job(kind, job_id)
        if row is None or row.status in TERMINAL:
            return
        request_key = self._request_key(row) if row.key_source == "request" else None
        if row.key_source == "request" and request_key is None:
            await self.fail_server_restart(kind, job_id)
            return
        event = self._cancel.setdefault(job_id, asyncio.Event())
        if row.cancel_requested:
            event.set()
        started_at = as_utc(row.started_at) or utcnow()
        await self.store.update_job(kind, job_id, status="running", started_at=started_at)
        ctx = JobContext(kind, job_id, self.store, request_key, event, row)
        caller = current_caller.set(Caller(row.tenant))  # its calls are charged to its tenant
        watcher = asyncio.create_task(self._watch(ctx))
        metrics.IN_PROGRESS.labels(kind).inc()
        attributes = {"crystallise.job.kind": kind, "crystallise.job.id": job_id,
                      "crystallise.tenant": row.tenant}  # fmt: skip
        try:
            with tracing.tracer.start_as_current_span("crystallise.job", attributes=attributes):
                status, values = await self._outcome(ctx)
                ctx.end_stage()
                await self._finish(kind, job_id, started_at, status, values)
        finally:
            ctx.end_stage()
            watcher.cancel()
            metrics.IN_PROGRESS.labels(kind).dec()
            current_caller.reset(caller)

    async def _outcome(self, ctx: JobContext) -> tuple[str, dict[str, Any]]:
        """Run the handler; the terminal status and the columns to store with it."""
        try:
            ctx.raise_if_cancelled()
            outcome = await self.handlers[ctx.kind](ctx)
        except asyncio.CancelledError:
            raise  # process shutdown: leave the job to be resumed
        except JobCancelled:
            if ctx.stop_reason:
                return "failed", {
                    "error": ctx.stop_reason,
                    "error_category": "budget",
                    "error_retryable": True,
                    **await self._spent(ctx.kind, ctx.job_id),
                }
            return "cancelled", {
                "error": "Cancelled by request",
                **await self._spent(ctx.kind, ctx.job_id),
            }
        except LLMError as exc:
            return "failed", {
                "error": exc.message,
                "error_category": exc.category.value,
                "error_retryable": exc.retryable,
                **await self._spent(ctx.kind, ctx.job_id),
            }
        except Exception as exc:
            log.exception("job_crashed", job_id=ctx.job_id, kind=ctx.kind)
            return "failed", {
                "error": f"Internal error ({type(exc).__name__}); see server logs for job "
                f"{ctx.job_id}.",
                "error_category": ErrorCategory.UNKNOWN.value,
                "error_retryable": False,
            }
        return "completed", {"progress": 1.0, **outcome.columns()}

    async def _spent(self, kind: JobKind, job_id: str) -> dict[str, Any]:
        """A failed job reports what it actually spent (its saved tally), not the estimate."""
        return _spent_of(await self.store.get_job(kind, job_id))

    async def _finish(
        self, kind: JobKind, job_id: str, started_at: Any, status: str, values: dict[str, Any]
    ) -> None:
        now = utcnow()
        duration = int((now - started_at).total_seconds() * 1000)
        final = {
            "status": status,
            "completed_at": now,
            "duration_ms": duration,
            "encrypted_openai_key": None,  # the per-request key lives no longer than its job
            **values,
        }
        if status == "completed":
            status = await self.store.complete_job(kind, job_id, **final)
        else:
            await self.store.update_job(kind, job_id, **final)
        metrics.JOBS.labels(kind, status, job_owner()).inc()
        log.info("job_finished", job_id=job_id, kind=kind, status=status, duration_ms=duration)

    async def _finish_cancelled(self, kind: JobKind, job_id: str) -> None:
        row = await self.store.get_job(kind, job_id)
        started = as_utc(row.started_at) if row else None
        values = {"error": "Cancelled by request", **_spent_of(row)}
        await self._finish(kind, job_id, started or utcnow(), "cancelled", values)


def _spent_of(row: JobRow | None) -> dict[str, Any]:
    return {"estimated_cost_usd": JobUsage.of(row).spent_usd}
