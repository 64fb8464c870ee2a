"""The one job machinery: map a per-item coroutine over a job's unfinished items (and, with
``map_bounded``, over any items: the synchronous indexer run).

Items are read page by page (bounded memory), at most ``window`` run at once, and the
coroutine checkpoints each result through ``ctx.writer``. On cancel, or when ``stop()``
turns true, no new item starts and the items in flight are abandoned (their model calls
never go out); a coroutine's exception stops the mapping the same way and is re-raised.
Resume is free: finished items are not in ``statuses``, so a rerun skips them.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import TypeVar

from crystallise.db.jobs import ItemRow
from crystallise.jobs.engine.runner import JobContext

PAGE = 500
T = TypeVar("T")
WATCH_S = 0.1


async def map_items(
    ctx: JobContext,
    work: Callable[[ItemRow], Awaitable[None]],
    *,
    statuses: list[str],
    window: int,
    stop: Callable[[], bool] = lambda: False,
) -> None:
    """Run ``work`` on every item of the job in ``statuses``, ``window`` at a time."""

    async def pages() -> AsyncIterator[list[ItemRow]]:
        after = -1
        while True:
            page = await ctx.store.items(ctx.job_id, statuses=statuses, after_seq=after, limit=PAGE)
            yield page
            if len(page) < PAGE:
                return
            after = page[-1].seq

    error = await map_bounded(pages(), work, window=window, stop=lambda: ctx.cancelled() or stop())
    await ctx.writer.flush()
    if error is not None:
        raise error


async def map_bounded(
    pages: AsyncIterator[Sequence[T]],
    work: Callable[[T], Awaitable[None]],
    *,
    window: int,
    stop: Callable[[], bool] = lambda: False,
) -> BaseException | None:
    """Run ``work`` on every item of ``pages`` (read a page at a time), ``window`` at once,
    until ``stop()`` or a first exception, which is returned once the work in flight is
    drained or abandoned. Jobs (``map_items``) and the synchronous indexer run use it."""
    slots = asyncio.Semaphore(max(1, window))
    tasks: set[asyncio.Task[None]] = set()
    errors: list[BaseException] = []

    def halted() -> bool:
        return bool(errors) or stop()

    async def guarded(item: T) -> None:
        try:
            await work(item)
        except Exception as exc:  # noqa: BLE001 - returned once drained
            errors.append(exc)
        finally:
            slots.release()

    try:
        while not halted():
            page = await anext(pages, None)
            if page is None:
                break
            for item in page:
                await slots.acquire()
                if halted():
                    slots.release()
                    break
                task = asyncio.create_task(guarded(item))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
        await drain(set(tasks), halted)
    except asyncio.CancelledError:
        # the process is stopping: no item may go on in the background
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise
    return errors[0] if errors else None


async def drain(tasks: set[asyncio.Task[None]], halted: Callable[[], bool]) -> None:
    """Wait for ``tasks``; once halted, abandon them so that no queued call is sent."""
    pending = tasks
    try:
        while pending:
            _, pending = await asyncio.wait(pending, timeout=WATCH_S)
            if pending and halted():
                break
    finally:  # halted, or this task itself cancelled (the process is stopping)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
