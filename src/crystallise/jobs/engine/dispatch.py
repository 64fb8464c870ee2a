"""Where a new job runs: in this process, in the server's job process (SQLite default), or
through the PostgreSQL queue."""

from __future__ import annotations

from typing import Protocol

import procrastinate

from crystallise.db.jobs import JobKind
from crystallise.jobs.engine.queue import build_queue_app, defer_job, ensure_queue_schema
from crystallise.jobs.engine.runner import JobRunner


class JobDispatcher(Protocol):
    runner: JobRunner

    async def start(self) -> None: ...
    async def dispatch(self, kind: JobKind, job_id: str, request_key: str | None) -> None: ...
    async def cancel(self, kind: JobKind, job_id: str) -> None: ...
    async def stop(self) -> None: ...
    async def maintain(self, stalled_after_s: float) -> None: ...


class InProcessDispatcher:
    """Jobs run as tasks of this process; on start-up unfinished jobs resume."""

    def __init__(self, runner: JobRunner) -> None:
        self.runner = runner

    async def start(self) -> None:
        await self.runner.resume_unfinished()

    async def dispatch(self, kind: JobKind, job_id: str, request_key: str | None) -> None:
        self.runner.submit(kind, job_id, request_key)

    async def cancel(self, kind: JobKind, job_id: str) -> None:
        await self.runner.cancel(kind, job_id)

    async def stop(self) -> None:
        return None

    async def maintain(self, stalled_after_s: float) -> None:
        return None


class QueueDispatcher:
    """API processes only enqueue; `crystallise worker` processes run the jobs.

    Exception: a job with a per-request key and no ``CRYSTALLISE_SECRET_KEY`` to encrypt it
    runs here, in the process that received the key, which never writes it anywhere.
    """

    def __init__(self, runner: JobRunner, conninfo: str) -> None:
        self.runner = runner
        self.app: procrastinate.App = build_queue_app(conninfo)

    async def start(self) -> None:
        await self.app.open_async()
        await ensure_queue_schema(self.app)

    async def dispatch(self, kind: JobKind, job_id: str, request_key: str | None) -> None:
        if request_key and self.runner.secret_box is None:
            self.runner.submit(kind, job_id, request_key)
            return
        await defer_job(self.app, kind, job_id)

    async def cancel(self, kind: JobKind, job_id: str) -> None:
        await self.runner.cancel(kind, job_id)  # stored flag: the worker sees it within 1 s

    async def stop(self) -> None:
        await self.app.close_async()

    async def maintain(self, stalled_after_s: float) -> None:
        """Fail jobs whose key lived only in a process that went away."""
        await self.runner.fail_orphaned(stalled_after_s)
