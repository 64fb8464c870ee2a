"""The indexer job function: process pending records, checkpoint each, report usage to date."""

from __future__ import annotations

from crystallise.config.settings import Settings
from crystallise.db.jobs import ItemRow
from crystallise.indexer.mock import mock_record
from crystallise.indexer.pipeline import ExtractionContext, process_record
from crystallise.indexer.schemas import IndexedRecord
from crystallise.indexer.spec import IndexerJobSpec
from crystallise.jobs.engine.failures import job_failure, too_many_failed
from crystallise.jobs.engine.items import map_items
from crystallise.jobs.engine.retirement import current_models
from crystallise.jobs.engine.runner import JobContext, JobFunction, JobOutcome
from crystallise.jobs.engine.usage import JobUsage
from crystallise.llm.ask import plan_model
from crystallise.llm.client import LLMClient
from crystallise.llm.errors import LLMError


def _failure(failed: int, decided: int, last: IndexedRecord) -> LLMError:
    category = last.error_category or "unknown"
    return job_failure(failed, decided, "records", category, str(last.error))


class IndexerJob:
    """One run of an indexer job over its pending records (real or mock)."""

    def __init__(
        self, ctx: JobContext, spec: IndexerJobSpec, settings: Settings, llm: LLMClient
    ) -> None:
        self.ctx = ctx
        self.mock = bool(ctx.row and ctx.row.mock)
        self.ext = ExtractionContext(
            llm,
            plan_model(settings, spec.model),
            spec.fields,
            spec.project_context,
            ctx.request_key,
            system_prompt=spec.system_prompt,
        )
        self.spec = spec
        self.total = ctx.row.item_count if ctx.row else 0
        self.decided = self.failed = 0
        self.pending = 0  # unfinished records when this run started (set in run)

    async def _save_usage(self, force: bool = False) -> None:
        tally = self.ext.tally
        usage = JobUsage.model_validate({**tally.summary(), "tally": tally.to_dict()})
        await self.ctx.save_usage(usage, self.ext.model_version, force=force)

    async def _one(self, item: ItemRow) -> None:
        if self.mock:
            extracted = mock_record(self.spec.fields, item.input)
        else:
            extracted = await process_record(self.ext, item.input)
        result = IndexedRecord.model_validate(extracted)
        ok = result.indexing_status == "ok"
        self.ctx.writer.put(item.seq, "done" if ok else "error", result)
        self.decided += 1
        if not ok:
            self.failed += 1
            if too_many_failed(self.failed, self.decided):
                raise _failure(self.failed, self.decided, result)
        done = self.total - self.pending + self.decided
        await self.ctx.report(done / max(self.total, 1), "extraction")
        await self._save_usage()

    async def run(self) -> JobOutcome:
        row = self.ctx.row
        spent = JobUsage.of(row).tally
        if spent:
            self.ext.tally.merge_dict(spent)
        self.pending = await self.ctx.store.count_items(self.ctx.job_id, ["pending"])
        try:
            await map_items(self.ctx, self._one, statuses=["pending"], window=self.spec.max_workers)
        finally:
            await self.ctx.writer.close()
            await self._save_usage(force=True)
        self.ctx.raise_if_cancelled()
        return await self._outcome()

    async def _outcome(self) -> JobOutcome:
        failed = await self.ctx.store.all_items(self.ctx.job_id, ["error"])
        records = [i.result_as(IndexedRecord) or IndexedRecord(ID=i.item_id) for i in failed]
        errors = [f"Record {i.item_id}: {r.error}" for i, r in zip(failed, records, strict=True)]
        if failed and len(failed) == self.total:
            raise _failure(len(failed), self.total, records[0])
        summary = self.ext.tally.summary()
        return JobOutcome(
            stage="extraction",
            errors=errors,
            usage=JobUsage.model_validate(
                {
                    **summary,
                    "cost_per_paper_usd": round(
                        summary["estimated_cost_usd"] / max(self.total, 1), 8
                    ),
                    "tally": self.ext.tally.to_dict(),
                }
            ),
            estimated_cost_usd=summary["estimated_cost_usd"],
            model_version="mock" if self.mock else self.ext.model_version,
        )


def make_indexer_job(settings: Settings, llm: LLMClient) -> JobFunction:
    async def run(ctx: JobContext) -> JobOutcome:
        assert ctx.row is not None
        spec = ctx.row.spec(IndexerJobSpec)
        spec = await current_models(ctx, settings, spec, ("model",))
        return await IndexerJob(ctx, spec, settings, llm).run()

    return run
