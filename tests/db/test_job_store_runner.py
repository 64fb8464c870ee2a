"""The job store and the in-process runner, with real job functions, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from pydantic import BaseModel

from crystallise.db.async_jobs import AsyncJobStore
from crystallise.db.engine import make_engine, make_session_factory, upgrade_database
from crystallise.db.jobs import ItemRow, JobStore, utcnow
from crystallise.jobs.engine.items import map_items
from crystallise.jobs.engine.runner import JobContext, JobOutcome, JobRunner
from crystallise.jobs.engine.usage import JobUsage
from crystallise.llm.errors import ErrorCategory, LLMError
from tests.conftest import make_settings


@pytest.fixture
def store(tmp_path: object, database_url: str) -> JobStore:
    url = make_settings(tmp_path, database_url=database_url).sqlalchemy_url
    upgrade_database(url)
    return JobStore(make_session_factory(make_engine(url)))


class _Words(BaseModel):
    words: int


def _words_job(delay: float = 0.0, fail_at: int | None = None, error: Exception | None = None):
    """A real job function on the shared machinery (``map_items``): counts words per item,
    one at a time, checkpointing each item as it finishes."""

    async def run(ctx: JobContext) -> JobOutcome:
        total = await ctx.store.count_items(ctx.job_id)
        done = [total - await ctx.store.count_items(ctx.job_id, ["pending"])]

        async def one(item: ItemRow) -> None:
            if fail_at is not None and item.seq == fail_at:
                raise error or RuntimeError("boom")
            await asyncio.sleep(delay)
            ctx.writer.put(item.seq, "done", _Words(words=len(item.input["text"].split())))
            await ctx.writer.flush()
            done[0] += 1
            await ctx.report(done[0] / total, "counting")

        await map_items(ctx, one, statuses=["pending"], window=1)
        ctx.raise_if_cancelled()
        return JobOutcome(usage=JobUsage.model_validate({"items": total}))

    return run


def _create(store: JobStore, n: int = 5, project_id: int | None = 7, **kw: object) -> str:
    import uuid

    job_id = str(uuid.uuid4())
    items = [(f"p{i}", {"text": "word " * (i + 1)}) for i in range(n)]
    store.create_job(
        "screening", job_id=job_id, items=items, project_id=project_id, model="m", **kw
    )  # type: ignore[arg-type]
    return job_id


async def _until_some_done(store: JobStore, job_id: str, at_least: int = 2) -> None:
    """Wait until the job has checkpointed a few items (a slow CI machine may need a while)."""
    for _ in range(400):
        if store.count_items(job_id, ["done"]) >= at_least:
            return
        await asyncio.sleep(0.025)
    raise AssertionError("the job checkpointed nothing in 10 s")


async def test_job_lifecycle_and_item_results(store: JobStore) -> None:
    runner = JobRunner(AsyncJobStore(store), {"screening": _words_job()})
    job_id = _create(store)
    row = store.get_job("screening", job_id)
    assert row is not None and row.status == "pending" and row.item_count == 5
    assert store.active_job("screening", 7).id == job_id  # type: ignore[union-attr]
    runner.submit("screening", job_id)
    await runner.wait(job_id, timeout=10)
    row = store.get_job("screening", job_id)
    assert row.status == "completed" and row.progress == 1.0 and row.stage == "counting"  # type: ignore[union-attr]
    assert (
        row.completed_at is not None and row.duration_ms is not None and row.usage == {"items": 5}
    )  # type: ignore[union-attr]
    results = [i.result["words"] for i in store.result_page(job_id, 0, 10)]  # type: ignore[index]
    assert results == [1, 2, 3, 4, 5]
    assert store.active_job("screening", 7) is None
    assert [j.id for j in store.list_jobs("screening", limit=1)] == [job_id]


async def test_llm_failure_is_classified_on_the_job(store: JobStore) -> None:
    error = LLMError("Invalid OpenAI key", ErrorCategory.AUTH)
    runner = JobRunner(AsyncJobStore(store), {"screening": _words_job(fail_at=2, error=error)})
    job_id = _create(store)
    runner.submit("screening", job_id)
    await runner.wait(job_id, timeout=10)
    row = store.get_job("screening", job_id)
    assert (row.status, row.error_category, row.error_retryable) == ("failed", "auth", False)  # type: ignore[union-attr]
    assert store.count_items(job_id, ["done"]) == 2  # work before the failure is kept


async def test_unexpected_exception_fails_job_without_details(store: JobStore) -> None:
    runner = JobRunner(
        AsyncJobStore(store),
        {"screening": _words_job(fail_at=0, error=ValueError("sk-secret-123456789"))},
    )
    job_id = _create(store)
    runner.submit("screening", job_id)
    await runner.wait(job_id, timeout=10)
    row = store.get_job("screening", job_id)
    assert row.status == "failed" and row.error_category == "unknown"  # type: ignore[union-attr]
    assert "sk-secret" not in (row.error or "")  # type: ignore[union-attr]


async def test_cancel_stops_the_job_and_keeps_partial_results(store: JobStore) -> None:
    runner = JobRunner(AsyncJobStore(store), {"screening": _words_job(delay=0.05)})
    job_id = _create(store, n=40)
    runner.submit("screening", job_id)
    await _until_some_done(store, job_id)
    await runner.cancel("screening", job_id)
    await runner.wait(job_id, timeout=10)
    row = store.get_job("screening", job_id)
    assert row.status == "cancelled"  # type: ignore[union-attr]
    done = store.count_items(job_id, ["done"])
    assert 0 < done < 40


async def test_resume_after_restart_continues_from_checkpoint(store: JobStore) -> None:
    first = JobRunner(AsyncJobStore(store), {"screening": _words_job(delay=0.03)})
    job_id = _create(store, n=30)
    first.submit("screening", job_id)
    await _until_some_done(store, job_id)
    await first.shutdown()  # the process goes away mid-job
    done_before = store.count_items(job_id, ["done"])
    assert store.get_job("screening", job_id).status == "running"  # type: ignore[union-attr]
    assert 0 < done_before < 30

    second = JobRunner(AsyncJobStore(store), {"screening": _words_job()})
    assert await second.resume_unfinished() == [job_id]
    await second.wait(job_id, timeout=10)
    assert store.get_job("screening", job_id).status == "completed"  # type: ignore[union-attr]
    assert store.count_items(job_id, ["done"]) == 30


async def test_job_with_request_key_cannot_resume(store: JobStore) -> None:
    job_id = _create(store, key_source="request")
    store.update_job("screening", job_id, status="running")
    runner = JobRunner(AsyncJobStore(store), {"screening": _words_job()})
    assert await runner.resume_unfinished() == []
    row = store.get_job("screening", job_id)
    assert (row.status, row.error_category) == ("failed", "server_restart")  # type: ignore[union-attr]


async def test_retention_purges_only_old_terminal_jobs(store: JobStore) -> None:
    old, fresh, running = _create(store), _create(store), _create(store)
    store.update_job(
        "screening", old, status="completed", completed_at=utcnow() - timedelta(days=40)
    )
    store.update_job("screening", fresh, status="completed", completed_at=utcnow())
    store.update_job("screening", running, status="running")
    assert store.purge_expired(30) == 1
    assert store.get_job("screening", old) is None and store.count_items(old) == 0
    assert (
        store.get_job("screening", fresh) is not None
        and store.get_job("screening", running) is not None
    )
    assert store.purge_expired(0) == 0


async def test_cancel_flag_set_by_another_process_is_seen(store: JobStore) -> None:
    runner = JobRunner(AsyncJobStore(store), {"screening": _words_job(delay=0.05)})
    job_id = _create(store, n=60)
    runner.submit("screening", job_id)
    await _until_some_done(store, job_id)
    store.request_cancel("screening", job_id)  # what an API process on another machine does
    await runner.wait(job_id, timeout=10)
    assert store.get_job("screening", job_id).status == "cancelled"  # type: ignore[union-attr]
    assert store.count_items(job_id, ["done"]) < 60
