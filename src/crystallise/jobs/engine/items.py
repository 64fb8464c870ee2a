"""The one job machinery: map a per-item coroutine over a job's unfinished items.

Items are read page by page (bounded memory), at most ``window`` run at once, and the
coroutine checkpoints each result through ``ctx.writer``. On cancel, or when ``stop()``
turns true, no new item starts and the items in flight are abandoned (their model calls
never go out); a coroutine's exception stops the mapping the same way and is re-raised.
Resume is free: finished items are not in ``statuses``, so a rerun skips them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from crystallise.db.jobs import ItemRow
from crystallise.jobs.engine.runner import JobContext

PAGE = 500
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
    slots = asyncio.Semaphore(max(1, window))
    tasks: set[asyncio.Task[None]] = set()
    errors: list[BaseException] = []

    def halted() -> bool:
        return bool(errors) or ctx.cancelled() or stop()

    async def guarded(item: ItemRow) -> None:
        try:
            await work(item)
        except Exception as exc:  # noqa: BLE001 - re-raised by map_items once drained
            errors.append(exc)
        finally:
            slots.release()

    try:
        after = -1
        while not halted():
            page = await ctx.store.items(ctx.job_id, statuses=statuses, after_seq=after, limit=PAGE)
            for item in page:
                await slots.acquire()
                if halted():
                    slots.release()
                    break
                task = asyncio.create_task(guarded(item))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
            if len(page) < PAGE:
                break
            after = page[-1].seq
        await drain(set(tasks), halted)
    except asyncio.CancelledError:
        # the process is stopping: no item of this job may go on in the background
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise
    await ctx.writer.flush()
    if errors:
        raise errors[0]


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
