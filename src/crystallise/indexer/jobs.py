"""The indexer job function: process pending records, checkpoint each, report usage to date."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from crystallise.batch.failures import job_failure, too_many_failed
from crystallise.batch.models import current_models
from crystallise.batch.runner import JobCancelled, JobContext, JobFunction, JobOutcome
from crystallise.batch.writer import ItemWriter
from crystallise.indexer.mock import mock_record
from crystallise.indexer.pipeline import ExtractionContext, process_record
from crystallise.indexer.schemas import IndexerField, ProjectContext
from crystallise.llm.errors import LLMError
from crystallise.services import Services

USAGE_SAVE_INTERVAL_S = 1.0


def _failure(failed: int, decided: int, last: dict[str, Any]) -> LLMError:
    category = str(last.get("error_category") or "unknown")
    return job_failure(failed, decided, "records", category, str(last.get("error")))


def make_indexer_job(services: Services) -> JobFunction:
    async def run(ctx: JobContext) -> JobOutcome:
        job = ctx.store.get_job("indexer", ctx.job_id)
        assert job is not None
        explicit = bool(job.config.get("model_explicit", False))
        stored = {**job.config, "model": job.model}
        config: dict[str, Any] = current_models(ctx, services.settings, stored, {"model": explicit})
        fields = [IndexerField(**f) for f in config["fields"]]
        pc = ProjectContext(**config["project_context"]) if config.get("project_context") else None
        ext = ExtractionContext(
            services.llm,
            str(config["model"]),
            fields,
            pc,
            ctx.request_key,
            system_prompt=config.get("system_prompt"),
        )
        if job.usage and job.usage.get("tally"):
            ext.tally.merge_dict(job.usage["tally"])
        total = job.item_count
        done = total - ctx.store.count_items(ctx.job_id, ["pending"])
        writer = ItemWriter(ctx.store, ctx.job_id)
        workers = asyncio.Semaphore(int(config.get("max_workers", 4)))
        last_save = [0.0]
        failed = [0]
        done_before = done

        def save_usage() -> None:
            ctx.store.update_job(
                "indexer",
                ctx.job_id,
                usage={**ext.tally.summary(), "tally": ext.tally.to_dict()},
                model_version=ext.model_version,
            )

        async def one(seq: int, record: dict[str, Any]) -> None:
            nonlocal done
            if ctx.cancelled():
                return
            async with workers:
                if ctx.cancelled():
                    return
                result = (
                    mock_record(fields, record) if job.mock else await process_record(ext, record)
                )
            ok = result["indexing_status"] == "ok"
            writer.put(seq, "done" if ok else "error", result)
            done += 1
            if not ok:
                failed[0] += 1
                if too_many_failed(failed[0], done - done_before):
                    raise _failure(failed[0], done - done_before, result)
            ctx.report(done / max(total, 1), "extraction")
            if time.monotonic() - last_save[0] > USAGE_SAVE_INTERVAL_S:
                last_save[0] = time.monotonic()
                save_usage()

        batch_size = int(config.get("batch_size", 50))
        try:
            while not ctx.cancelled():
                batch = ctx.store.items(ctx.job_id, statuses=["pending"], limit=batch_size)
                if not batch:
                    break
                try:
                    async with asyncio.TaskGroup() as group:  # a job-wide error stops the rest
                        for item in batch:
                            group.create_task(one(item.seq, item.input))
                except BaseExceptionGroup as group_error:
                    raise group_error.exceptions[0] from None
                await writer.flush()
        finally:
            await writer.close()
            save_usage()
        if ctx.cancelled():
            raise JobCancelled()
        errors = [
            f"Record {i.item_id}: {(i.result or {}).get('error')}"
            for i in ctx.store.iter_items(ctx.job_id, statuses=["error"])
        ]
        if errors and len(errors) == total:
            last = ctx.store.items(ctx.job_id, statuses=["error"], limit=1)[0].result or {}
            raise _failure(len(errors), total, last)
        summary = ext.tally.summary()
        return JobOutcome(
            {
                "stage": "extraction",
                "errors": errors,
                "usage": {**summary, "tally": ext.tally.to_dict()},
                "estimated_cost_usd": summary["estimated_cost_usd"],
                "model_version": "mock" if job.mock else ext.model_version,
            }
        )

    return run
