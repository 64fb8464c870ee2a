"""The indexer job function: process pending records, checkpoint each, report usage to date."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from crystallise.batch.models import current_models
from crystallise.batch.runner import JobCancelled, JobContext, JobFunction, JobOutcome
from crystallise.batch.writer import ItemWriter
from crystallise.indexer.mock import mock_record
from crystallise.indexer.pipeline import ExtractionContext, process_record
from crystallise.indexer.schemas import IndexerField, ProjectContext
from crystallise.services import Services

USAGE_SAVE_INTERVAL_S = 1.0


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
            writer.put(seq, "done" if result["indexing_status"] == "ok" else "error", result)
            done += 1
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
                await asyncio.gather(*(one(i.seq, i.input) for i in batch))
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
