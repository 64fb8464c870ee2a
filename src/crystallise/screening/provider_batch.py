"""Screening stages 1-2 through the provider's Batch API (a job submitted with
``"batch": true``): every pending paper's labelling requests go in JSONL batches, then every
labelled paper's reasoning request; themes and assignment then run as usual.

- The job stays ``running``; its stage reads ``batch:labelling`` / ``batch:reasoning`` while
  it waits, and its view lists the batches (``provider_batches``: id, stage, status, counts).
- The batch ids are stored on the job as soon as a batch exists, so a restarted service
  polls the batches it started instead of paying for them again.
- Cancelling the job cancels its open batches.
- A request that fails inside a batch (or whose answer fails its schema) leaves its paper
  where it was; the next round sends those papers again, and after MAX_ROUNDS rounds a
  paper that still has no answer ends with an item error, as in the live path.
- Usage is tallied as ``<model>@batch``, priced at the Batch API's half rate.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict

from crystallise.db.jobs import ItemRow
from crystallise.jobs.engine.runner import JobCancelled
from crystallise.llm.answers import ChatResult
from crystallise.llm.batches import TERMINAL, BatchAPI, BatchOutput, request_line, split_lines
from crystallise.llm.cost import BATCH_SUFFIX
from crystallise.llm.errors import ErrorCategory, LLMError
from crystallise.llm.shaping import PreparedCall
from crystallise.screening.assessment import assess
from crystallise.screening.schemas import ScreeningResult
from crystallise.screening.scoring import (
    TOP_LOGPROBS,
    distribution_fields,
    reasoned,
    score_distribution,
    score_fields,
)

if TYPE_CHECKING:
    from crystallise.screening.pipeline import ScreeningPipeline, _Progress


class ProviderBatch(BaseModel):
    """One provider batch the job submitted, as the job row keeps it (``provider_batches``):
    a restart polls it instead of paying twice."""

    model_config = ConfigDict(extra="allow")
    id: str
    stage: str
    round: int
    applied: bool = False  # its answers were read and written to the papers
    status: str | None = None
    total: int | None = None
    completed: int | None = None
    failed: int | None = None
    input_file_id: str | None = None
    output_file_id: str | None = None
    error_file_id: str | None = None
    error: str | None = None

    def update_from(self, batch: dict[str, Any]) -> None:
        """Keep what the job needs of the provider's batch object."""
        counts = batch.get("request_counts") or {}
        errors = (batch.get("errors") or {}).get("data") or []
        self.status = batch.get("status")
        self.total, self.completed = counts.get("total"), counts.get("completed")
        self.failed = counts.get("failed")
        self.input_file_id = batch.get("input_file_id")
        self.output_file_id = batch.get("output_file_id")
        self.error_file_id = batch.get("error_file_id")
        if errors:
            self.error = str(errors[0].get("message") or errors[0])


MAX_ROUNDS = 3  # batches per stage for papers whose requests failed inside a batch
STAGES = {"labelling": "pending", "reasoning": "labelled"}  # stage -> papers it takes


class ProviderBatches:
    def __init__(self, pipeline: ScreeningPipeline) -> None:
        self.p = pipeline
        self.ctx = pipeline.ctx
        self.llm = pipeline.llm
        self.api = BatchAPI(self.llm, self.llm.resolve_key(None, self.ctx.request_key))
        row = self.ctx.row
        stored = (row.provider_batches if row is not None else None) or []
        self.batches = [ProviderBatch.model_validate(b) for b in stored]
        self.sample_instead: set[int] = set()  # distribution answers without logprobs
        self.last_failure: dict[int, str] = {}

    # ---- requests ----------------------------------------------------------------------
    def _prepare(self, messages: list[dict[str, Any]], **kw: Any) -> PreparedCall:
        plan = self.p.plan
        kw.setdefault("max_output_tokens", plan.max_output_tokens)
        return self.llm.prepare(
            messages,
            model=plan.model,
            temperature=plan.temperature,
            reasoning_effort=plan.reasoning_effort,
            prompt_cache_key=f"screening-{self.ctx.job_id}",
            **kw,
        )

    def _label_calls(self, item: ItemRow) -> list[PreparedCall]:
        messages = self.p.label_messages(item.input)
        kw = self.p.label_kw()
        reps = self.p.spec.repetitions
        if self.p.spec.scoring == "distribution" and item.seq not in self.sample_instead:
            return [self._prepare(messages, top_logprobs=TOP_LOGPROBS, **kw)]
        if self.p.plan.supports_n and reps > 1:
            return [self._prepare(messages, n=reps, **kw)]
        return [self._prepare(messages, **kw) for _ in range(reps)]

    def _reason_calls(self, item: ItemRow) -> list[PreparedCall]:
        messages = self.p.reason_messages(item.input, ScreeningResult.of(item))
        return [self._prepare(messages, output_schema=self.p.reasoning_schema)]

    def _calls(self, stage: str, item: ItemRow) -> list[PreparedCall]:
        return self._label_calls(item) if stage == "labelling" else self._reason_calls(item)

    # ---- answers -----------------------------------------------------------------------
    def _read(self, call: PreparedCall, body: dict[str, Any]) -> ChatResult | None:
        answers = len(body.get("choices") or [])
        self.p.tally.add(call.intent.model + BATCH_SUFFIX, body.get("usage"), answers=answers)
        if self.p.model_version is None and body.get("model"):
            self.p.model_version = str(body["model"])
        try:
            return self.llm.read_completion(call, body)
        except LLMError:
            return None  # an answer that fails its schema: the paper goes again

    def _apply(self, stage: str, item: ItemRow, results: list[ChatResult]) -> bool:
        """Write the paper's next state from its answers; False when it needs another round."""
        paper = item.input
        if stage == "reasoning":
            if not results or results[0].parsed is None:
                return False
            parsed = results[0].parsed
            assessment = assess(parsed, self.p.spec.criteria, item.input)
            self.p.writer.put(
                item.seq, "reasoned", reasoned(ScreeningResult.of(item), parsed, assessment)
            )
            return True
        if self.p.spec.scoring == "distribution" and item.seq not in self.sample_instead:
            probs = score_distribution(results[0].choices[0].logprobs) if results else None
            if probs is None:
                if results:  # answered, but without log-probabilities: sample this paper
                    self.sample_instead.add(item.seq)
                    self.p.distribution_fallbacks += 1
                return False
            self.p.writer.put(item.seq, "labelled", distribution_fields(paper, probs))
            return True
        scores = [c.parsed.score for r in results for c in r.choices if c.parsed is not None]
        if len(scores) < self.p.spec.repetitions:
            return False
        self.p.writer.put(
            item.seq, "labelled", score_fields(paper, scores[: self.p.spec.repetitions])
        )
        return True

    # ---- the stages --------------------------------------------------------------------
    async def run(self, progress: _Progress) -> None:
        for stage, status in STAGES.items():
            await self._stage(stage, status, progress)
            if self.p.failure is not None:
                return

    async def _stage(self, stage: str, status: str, progress: _Progress) -> None:
        while True:
            mine = [b for b in self.batches if b.stage == stage]
            open_ = [b for b in mine if not b.applied]
            if not open_:
                await self.p.writer.flush()
                items = await self.ctx.store.all_items(self.ctx.job_id, [status])
                if not items:
                    return
                # a batch cancelled with the job (then retried) does not use up a round
                used = {b.round for b in mine if b.status != "cancelled"}
                if len(used) >= MAX_ROUNDS:
                    await self._give_up(stage, items, progress)
                    return
                open_ = await self._submit(
                    stage, items, max((b.round for b in mine), default=0) + 1
                )
            await self._wait(stage, open_, progress)
            await self._collect(stage, status, open_, progress)
            if self.p.failure is not None:
                return

    async def _submit(self, stage: str, items: list[ItemRow], round_no: int) -> list[ProviderBatch]:
        lines = [
            request_line(f"{stage}-{item.seq}-{k}", self.llm.request_body(call))
            for item in items
            for k, call in enumerate(self._calls(stage, item))
        ]
        started: list[ProviderBatch] = []
        for part in split_lines(lines):
            if self.ctx.cancelled():
                break
            batch = await self.api.submit(
                part, {"job_id": self.ctx.job_id, "stage": stage, "round": str(round_no)}
            )
            entry = ProviderBatch(id=batch["id"], stage=stage, round=round_no, applied=False)
            entry.update_from(batch)
            self.batches.append(entry)
            started.append(entry)
            await self._save()  # stored at once: a restart polls it instead of paying twice
        return started

    async def _wait(self, stage: str, batches: list[ProviderBatch], progress: _Progress) -> None:
        poll_s = self.llm.settings.batch_poll_s
        while True:
            if self.ctx.cancelled():
                await self.cancel_open()
                raise JobCancelled()
            waiting = [b for b in batches if b.status not in TERMINAL]
            for entry in waiting:
                entry.update_from(await self.api.retrieve(entry.id))
            await self._save()
            await self._report(stage, batches, progress)
            if all(b.status in TERMINAL for b in batches):
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.ctx.cancel_event.wait(), poll_s)

    async def _collect(
        self, stage: str, status: str, batches: list[ProviderBatch], progress: _Progress
    ) -> None:
        """Read each finished batch's files and move its papers on."""
        output = BatchOutput()
        for entry in batches:
            got = await self.api.output(entry.output_file_id, entry.error_file_id)
            output.answers.update(got.answers)
            output.failures.update(got.failures)
            if entry.status == "failed" and entry.error:
                output.failures.setdefault(f"{stage}-batch", entry.error)
        by_seq: dict[int, dict[int, dict[str, Any]]] = defaultdict(dict)
        for custom_id, body in output.answers.items():
            seq, k = _seq(custom_id, stage)
            if seq is not None:
                by_seq[seq][k] = body
        for custom_id, why in output.failures.items():
            seq, _ = _seq(custom_id, stage)
            if seq is not None:
                self.last_failure[seq] = why
            else:
                self.last_failure[-1] = why
        items = await self.ctx.store.all_items(self.ctx.job_id, [status])
        for item in items:
            answers = by_seq.get(item.seq)
            if not answers:
                continue
            calls = self._calls(stage, item)
            results = [
                r
                for k, body in sorted(answers.items())
                if k < len(calls) and (r := self._read(calls[k], body)) is not None
            ]
            if self._apply(stage, item, results):
                if stage == "labelling":
                    progress.labelled += 1
                else:
                    progress.reasoned += 1
        for entry in batches:
            entry.applied = True
        await self.p.writer.flush()
        await self._save()
        await self.p.save_usage(force=True)

    async def _give_up(self, stage: str, items: list[ItemRow], progress: _Progress) -> None:
        for item in items:
            why = self.last_failure.get(item.seq) or self.last_failure.get(-1) or "no answer"
            error = LLMError(
                f"No usable answer from the provider's batches after {MAX_ROUNDS} rounds "
                f"({stage}): {why}",
                ErrorCategory.TRANSIENT,
                item=True,
            )
            await self.p._item_failed(item, ScreeningResult.of(item), error, progress)

    async def cancel_open(self) -> None:
        """Cancel the job's batches still running at the provider."""
        for entry in self.batches:
            if entry.status not in TERMINAL and entry.status != "cancelling":
                with contextlib.suppress(LLMError):
                    entry.update_from(await self.api.cancel(entry.id))
        await self._save()

    async def _save(self) -> None:
        await self.ctx.store.update_job(
            self.ctx.kind,
            self.ctx.job_id,
            provider_batches=[b.model_dump(mode="json", exclude_unset=True) for b in self.batches],
        )

    async def _report(self, stage: str, batches: list[ProviderBatch], progress: _Progress) -> None:
        total = sum(b.total or 0 for b in batches) or 1
        done = sum((b.completed or 0) + (b.failed or 0) for b in batches)
        base = 0.0 if stage == "labelling" else 0.4
        await self.ctx.report(base + 0.4 * min(done / total, 1.0), f"batch:{stage}")


def _seq(custom_id: str, stage: str) -> tuple[int | None, int]:
    """``<stage>-<seq>-<k>`` -> (seq, k); (None, 0) for another stage's or a foreign id."""
    parts = custom_id.split("-")
    if len(parts) != 3 or parts[0] != stage:
        return None, 0
    try:
        return int(parts[1]), int(parts[2])
    except ValueError:
        return None, 0
