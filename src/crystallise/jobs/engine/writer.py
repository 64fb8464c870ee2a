"""Batched checkpointing of item results: one transaction per flush, off the event loop."""

from __future__ import annotations

import asyncio
from typing import Any

from pydantic import BaseModel

from crystallise.common.logging import get_logger
from crystallise.db.async_jobs import AsyncJobStore

log = get_logger(__name__)

FLUSH_INTERVAL_S = 0.0  # group commit: write as soon as the previous write is done
FLUSH_MAX_ROWS = 200


class ItemWriter:
    """Queues ``(seq, status, result)`` rows and writes them by group commit: a write
    starts as soon as a row arrives and the previous write is done, carrying every row that
    queued meanwhile. A row is durable once written; a crash loses only rows whose write was
    under way (paid calls repeated after a crash are those in flight, and those few). Call
    ``flush()`` before reading results back or finishing the job.
    """

    def __init__(self, store: AsyncJobStore, job_id: str) -> None:
        self._store = store
        self._job_id = job_id
        self._rows: dict[int, tuple[int, str, dict[str, Any] | None]] = {}
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None

    def put(self, seq: int, status: str, result: BaseModel | None) -> None:
        """Queue the item's result (its kind's typed model, stored as the fields it was
        given, JSON-ready); a later phase of an item replaces an earlier one."""
        stored = None if result is None else result.model_dump(mode="json", exclude_unset=True)
        self._rows[seq] = (seq, status, stored)
        if len(self._rows) >= FLUSH_MAX_ROWS:
            self._schedule(0.0)
        else:
            self._schedule(FLUSH_INTERVAL_S)

    def _schedule(self, delay: float) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._flush_after(delay))

    async def _flush_after(self, delay: float) -> None:
        if delay:
            await asyncio.sleep(delay)
        try:
            while self._rows:  # rows that arrived during a write go in the next one
                await self.flush()
        except Exception as exc:  # noqa: BLE001 - kept queued; close()/flush() raise it
            log.warning("item_flush_failed", job_id=self._job_id, error=type(exc).__name__)

    async def flush(self) -> None:
        """Write every queued row in one transaction. On failure (after the store's own
        retries) the rows stay queued, under any newer phase of the same item, and the
        error propagates: nothing is ever dropped."""
        async with self._lock:
            if not self._rows:
                return
            rows = list(self._rows.values())
            self._rows.clear()
            try:
                await self._store.save_items(self._job_id, rows)
            except BaseException:
                for row in rows:
                    self._rows.setdefault(row[0], row)
                raise

    async def close(self) -> None:
        if self._task is not None and not self._task.done():
            await asyncio.gather(self._task, return_exceptions=True)
        await self.flush()
