"""The job store for async code: every method is a coroutine that runs the one-transaction
``JobStore`` method in a worker thread, so no database call blocks the event loop that
serves the API and drives the jobs (SQLite and PostgreSQL alike)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Any, Literal, ParamSpec, TypeVar, overload

from crystallise.db.jobs import TERMINAL_STATUSES, ItemRow, JobKind, JobRow, JobStore
from crystallise.db.models import IndexerJob, ScreeningJob
from crystallise.errors import Conflict, NotFound

P = ParamSpec("P")
T = TypeVar("T")


async def _off_loop(fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    return await asyncio.to_thread(fn, *args, **kwargs)


class AsyncJobStore:
    """Coroutine twin of ``JobStore`` (``sync`` is the wrapped store)."""

    def __init__(self, store: JobStore) -> None:
        self.sync = store

    def with_retries(self, seconds: float) -> AsyncJobStore:
        return AsyncJobStore(self.sync.with_retries(seconds))

    async def create_job(
        self, kind: JobKind, *, job_id: str, items: Sequence[tuple[str, dict[str, Any]]], **kw: Any
    ) -> JobRow:
        return await _off_loop(self.sync.create_job, kind, job_id=job_id, items=items, **kw)

    @overload
    async def get_job(self, kind: Literal["screening"], job_id: str) -> ScreeningJob | None: ...
    @overload
    async def get_job(self, kind: Literal["indexer"], job_id: str) -> IndexerJob | None: ...
    @overload
    async def get_job(self, kind: JobKind, job_id: str) -> JobRow | None: ...
    async def get_job(self, kind: JobKind, job_id: str) -> JobRow | None:
        return await _off_loop(self.sync.get_job, kind, job_id)

    async def finished_job(self, kind: JobKind, job_id: str, doing: str) -> JobRow:
        """The job (scoped to the caller's tenant) once it has ended: 404 unknown, 409 while
        it runs (``doing``: what the caller wants to do with it, for the message)."""
        row = await self.get_job(kind, job_id)
        if row is None:
            raise NotFound(f"Job not found: {job_id}")
        if row.status not in TERMINAL_STATUSES:
            raise Conflict(f"Job {job_id} is {row.status}: {doing} once it has finished.")
        return row

    async def find_by_idempotency_key(self, kind: JobKind, key: str) -> JobRow | None:
        return await _off_loop(self.sync.find_by_idempotency_key, kind, key)

    async def list_jobs(self, kind: JobKind, limit: int = 50) -> list[JobRow]:
        return await _off_loop(self.sync.list_jobs, kind, limit)

    async def purge_reuse_index(self) -> int:
        return await _off_loop(self.sync.purge_reuse_index)

    async def count_reusable(self, keys: Sequence[str]) -> int:
        return await _off_loop(self.sync.count_reusable, keys)

    async def count_reusable_for(self, job_id: str) -> int:
        return await _off_loop(self.sync.count_reusable_for, job_id)

    async def reuse_results(self, job_id: str) -> int:
        return await _off_loop(self.sync.reuse_results, job_id)

    async def spend(
        self, since: datetime, tenant: str | None = None
    ) -> dict[str, dict[str, float]]:
        return await _off_loop(self.sync.spend, since, tenant)

    async def active_job(self, kind: JobKind, project_id: int) -> JobRow | None:
        return await _off_loop(self.sync.active_job, kind, project_id)

    async def recent_usage_tallies(self, model: str) -> list[dict[str, Any]]:
        return await _off_loop(self.sync.recent_usage_tallies, model)

    async def unfinished_jobs(self, kind: JobKind) -> list[JobRow]:
        return await _off_loop(self.sync.unfinished_jobs, kind)

    async def update_job(self, kind: JobKind, job_id: str, **values: Any) -> None:
        await _off_loop(self.sync.update_job, kind, job_id, **values)

    async def complete_job(self, kind: JobKind, job_id: str, **values: Any) -> str:
        return await _off_loop(self.sync.complete_job, kind, job_id, **values)

    async def reopen(
        self, kind: JobKind, job_id: str, *, key_source: str, encrypted_openai_key: str | None
    ) -> tuple[JobRow | None, int]:
        return await _off_loop(
            self.sync.reopen,
            kind,
            job_id,
            key_source=key_source,
            encrypted_openai_key=encrypted_openai_key,
        )

    async def request_cancel(self, kind: JobKind, job_id: str) -> JobRow | None:
        return await _off_loop(self.sync.request_cancel, kind, job_id)

    async def is_cancel_requested(self, kind: JobKind, job_id: str) -> bool:
        return await _off_loop(self.sync.is_cancel_requested, kind, job_id)

    async def purge_terminal_before(self, kind: JobKind, cutoff: datetime) -> int:
        return await _off_loop(self.sync.purge_terminal_before, kind, cutoff)

    async def purge_expired(self, retention_days: int) -> int:
        return await _off_loop(self.sync.purge_expired, retention_days)

    async def items(
        self,
        job_id: str,
        *,
        statuses: Iterable[str] | None = None,
        after_seq: int = -1,
        limit: int = 500,
    ) -> list[ItemRow]:
        wanted = list(statuses) if statuses is not None else None
        return await _off_loop(
            self.sync.items, job_id, statuses=wanted, after_seq=after_seq, limit=limit
        )

    async def all_items(self, job_id: str, statuses: Iterable[str] | None = None) -> list[ItemRow]:
        """Every matching item (read page by page in one worker thread)."""
        wanted = list(statuses) if statuses is not None else None
        return await _off_loop(lambda: list(self.sync.iter_items(job_id, statuses=wanted)))

    async def result_texts(self, job_id: str) -> list[str]:
        return await _off_loop(self.sync.result_texts, job_id)

    async def result_page(self, job_id: str, offset: int, limit: int) -> list[ItemRow]:
        return await _off_loop(self.sync.result_page, job_id, offset, limit)

    async def save_items(
        self, job_id: str, rows: Sequence[tuple[int, str, dict[str, Any] | None]]
    ) -> None:
        await _off_loop(self.sync.save_items, job_id, rows)

    async def count_items(self, job_id: str, statuses: Iterable[str] | None = None) -> int:
        wanted = list(statuses) if statuses is not None else None
        return await _off_loop(self.sync.count_items, job_id, wanted)
