"""The four-stage screening pipeline: labelling → reasoning → clustering → assignment.

Papers flow through labelling and reasoning independently (a paper's reasoning starts as
soon as its scores are in), bounded by the LLM layer's shared concurrency. Every paper's
result is checkpointed in ``job_items`` as it arrives, so a job resumes from where it
stopped and never sends a stored paper to the model again. Clustering works on a sample of
reasoning texts in token-budgeted chunks and assignment in small batches, so no request
grows with the job (20,000 papers fit in every context window).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, create_model

from crystallise.config.model_capabilities import capabilities_for
from crystallise.db.jobs import ItemRow
from crystallise.jobs.engine.failures import job_failure, too_many_failed
from crystallise.jobs.engine.items import map_items
from crystallise.jobs.engine.runner import JobCancelled, JobContext, JobOutcome
from crystallise.jobs.engine.usage import JobUsage
from crystallise.llm.answers import ChatResult
from crystallise.llm.ask import ask, plan_model
from crystallise.llm.client import LLMClient
from crystallise.llm.cost import UsageTally
from crystallise.llm.errors import LLMError
from crystallise.prompts import screening as prompts
from crystallise.screening.assessment import assess
from crystallise.screening.clustering import ClusteringStages
from crystallise.screening.criteria import criterion_ids, job_context
from crystallise.screening.estimate import label_calls_per_paper
from crystallise.screening.provider_batch import ProviderBatches
from crystallise.screening.schemas import LabelOutput, ScreeningResult, has_text
from crystallise.screening.scoring import (
    TOP_LOGPROBS,
    distribution_fields,
    rating_text,
    reasoned,
    score_distribution,
    score_fields,
)
from crystallise.screening.spec import ScreeningJobSpec

USAGE_SAVE_INTERVAL_S = 2.0
NO_ABSTRACT = "[No abstract available: judge on the title alone]"
# A paper whose calls fail gets an item error and the job goes on (rule: batch/failures.py).
MAX_LISTED_ERRORS = 1000


@dataclass
class _Progress:
    total: int
    labelled: int = 0
    reasoned: int = 0
    failed: int = 0
    timings: dict[str, list[float]] = field(default_factory=dict)

    def mark(self, stage: str) -> None:
        now = time.monotonic()
        span = self.timings.setdefault(stage, [now, now])
        span[1] = now

    def ms(self) -> dict[str, int]:
        return {k: int((v[1] - v[0]) * 1000) for k, v in self.timings.items()}


def _reasoning_model(ids: list[str], criteria_ids: list[str]) -> type[BaseModel]:
    ids_literal: Any = Literal[tuple(ids)]  # type: ignore[valid-type]
    verdict: Any = Literal["met", "unmet", "unclear"]
    criterion: Any = Literal[tuple(criteria_ids or ["none"])]  # type: ignore[valid-type]
    met: Any = Literal["met", "not_met", "unclear"]
    per_criterion: Any = create_model(
        "CriterionAssessment", criterion=(criterion, ...), verdict=(met, ...), quote=(str, ...)
    )
    return create_model(
        "ReasoningOutput",
        decisive_criteria=(list[ids_literal], ...),
        verdict=(verdict, ...),
        criteria_assessment=(list[per_criterion], ...),
        reasoning=(str, ...),
    )


class ScreeningPipeline(ClusteringStages):
    def __init__(self, ctx: JobContext, spec: ScreeningJobSpec, llm: LLMClient) -> None:
        self.ctx = ctx
        self.spec = spec
        self.llm = llm
        self.store = ctx.store
        self.writer = ctx.writer
        self.tally = UsageTally()
        self.model_version: str | None = None
        self.failure: LLMError | None = None
        settings = llm.settings
        self.plan = plan_model(
            settings, spec.model, temperature=spec.temperature, lowest_effort=True
        )
        self.clustering_plan = plan_model(settings, spec.clustering_model)
        self.assignment_plan = plan_model(
            settings, spec.assignment_model or spec.clustering_model, lowest_effort=True
        )
        caps = capabilities_for(settings, spec.model)
        # 1: one call with n, or one call read as a score distribution
        reps = 1 if spec.scoring == "distribution" else spec.repetitions
        self.label_calls = label_calls_per_paper(caps, reps)
        self.distribution_fallbacks = 0  # answers that came back without log-probabilities
        self.reused = 0  # papers whose results came from an earlier job (screening/reuse.py)
        self.context = job_context(spec.criteria, spec.questions)
        self.ids = criterion_ids(spec.criteria, spec.questions)
        self.reasoning_schema = _reasoning_model(self.ids, [c.id for c in spec.criteria])
        self.label_system = f"{spec.label_system or prompts.LABELLING.system}\n\n{self.context}"
        self.reason_system = f"{prompts.REASONING.system}\n\n{self.context}"

    # ---- model calls -----------------------------------------------------------------
    async def _chat(
        self, main: bool, messages: list[dict[str, Any]], *, assign: bool = False, **kw: Any
    ) -> ChatResult:
        """A call on the labelling model (``main``), the clustering model, or (``assign``)
        the assignment model."""
        plan = self.assignment_plan if assign else self.plan if main else self.clustering_plan
        result = await ask(
            self.llm,
            plan,
            messages,
            request_key=self.ctx.request_key,
            prompt_cache_key=f"screening-{self.ctx.job_id}",
            **kw,
        )
        self.tally.add(plan.model, result.usage, answers=result.answered)
        if self.model_version is None and main:
            self.model_version = result.model_version
        return result

    def _paper_message(self, paper: dict[str, Any], **extra: str) -> dict[str, str]:
        prompt = prompts.REASONING if extra else prompts.LABELLING
        return {
            "role": "user",
            "content": prompt.render_user(
                title=paper.get("title") or "[No title]",
                abstract=paper["abstract"] if has_text(paper.get("abstract")) else NO_ABSTRACT,
                **extra,
            ),
        }

    def label_messages(self, paper: dict[str, Any]) -> list[dict[str, Any]]:
        return [{"role": "system", "content": self.label_system}, self._paper_message(paper)]

    def label_kw(self) -> dict[str, Any]:
        # a score is a few tokens; reasoning models need room for their hidden reasoning
        return {
            "output_schema": LabelOutput,
            "max_output_tokens": 1024 if self.plan.reasoning_effort else 16,
        }

    async def label(self, paper: dict[str, Any]) -> ScreeningResult:
        """The paper's score fields: ``repetitions`` independent 1-5 scores (one call with
        n>1 where supported), or the score distribution of one answer (``scoring``)."""
        reps = self.spec.repetitions
        messages = self.label_messages(paper)
        kw = self.label_kw()
        scores: list[int] = []
        if self.spec.scoring == "distribution":
            result = await self._chat(True, messages, top_logprobs=TOP_LOGPROBS, **kw)
            probs = score_distribution(result.choices[0].logprobs)
            if probs is not None:
                return distribution_fields(paper, probs)
            self.distribution_fallbacks += 1  # no log-probabilities: this paper is sampled
            scores = [c.parsed.score for c in result.choices[:1] if c.parsed is not None]
        elif self.label_calls == 1:
            result = await self._chat(True, messages, n=reps, **kw)
            scores = [c.parsed.score for c in result.choices if c.parsed is not None]
        elif reps > 1:
            # one answer first: it puts the paper's whole prompt in the provider's prompt
            # cache, so the other repetitions (sent together) read it at the cached rate
            first = await self._chat(True, messages, **kw)
            scores = [first.parsed.score] if first.parsed is not None else []
        while len(scores) < reps:  # no n support, or choices that failed the schema
            missing = reps - len(scores)
            results = await asyncio.gather(
                *(self._chat(True, messages, **kw) for _ in range(missing))
            )
            scores += [r.parsed.score for r in results if r.parsed is not None]
        return score_fields(paper, scores[:reps])

    def reason_messages(
        self, paper: dict[str, Any], labelled: ScreeningResult
    ) -> list[dict[str, Any]]:
        return [
            {"role": "system", "content": self.reason_system},
            self._paper_message(paper, scores=rating_text(labelled)),
        ]

    async def reason(self, paper: dict[str, Any], labelled: ScreeningResult) -> ScreeningResult:
        result = await self._chat(
            True,
            self.reason_messages(paper, labelled),
            output_schema=self.reasoning_schema,
            max_output_tokens=None,
        )
        return reasoned(labelled, result.parsed, assess(result.parsed, self.spec.criteria, paper))

    # ---- stage 1+2: per-paper labelling and reasoning ---------------------------------
    async def _paper(self, item: ItemRow, progress: _Progress) -> None:
        paper = item.input
        result = item.result_as(ScreeningResult)
        try:
            if item.status == "pending" or result is None:
                result = await self.label(paper)
                self.writer.put(item.seq, "labelled", result)
                progress.labelled += 1
                progress.mark("labelling")
                await self._report(progress)
            if self._halted():
                return
            progress.mark("reasoning")
            result = await self.reason(paper, result)
            self.writer.put(item.seq, "reasoned", result)
            progress.reasoned += 1
            progress.mark("reasoning")
            await self._report(progress)
        except LLMError as exc:
            if exc.stops_job:
                self.failure = self.failure or exc
                return
            scored = result or ScreeningResult(id=str(paper["id"]))
            await self._item_failed(item, scored, exc, progress)

    def _halted(self) -> bool:
        return self.failure is not None or self.ctx.cancelled()

    async def _item_failed(
        self, item: ItemRow, result: ScreeningResult, exc: LLMError, progress: _Progress
    ) -> None:
        """Keep what the paper got (e.g. its scores) with its error; stop only on a pattern."""
        failed = result.updated(error=exc.message, error_category=exc.category.value)
        self.writer.put(item.seq, "error", failed)
        progress.failed += 1
        if result.scores is None:  # failed before its labels were counted
            progress.labelled += 1
        progress.reasoned += 1
        await self._report(progress)
        decided = progress.reasoned
        if too_many_failed(progress.failed, decided):
            self.failure = self.failure or job_failure(
                progress.failed, decided, "papers", exc.category.value, exc.message
            )

    async def _report(self, progress: _Progress) -> None:
        stage = "labelling" if progress.labelled < progress.total else "reasoning"
        done = progress.labelled + progress.reasoned
        await self.ctx.report(0.8 * done / (2 * max(progress.total, 1)), stage)
        await self.save_usage()

    async def save_usage(self, force: bool = False) -> None:
        usage = {**self.tally.summary(), "tally": self.tally.to_dict(), "reused_count": self.reused}
        await self.ctx.save_usage(JobUsage.model_validate(usage), self.model_version, force=force)

    def _window(self) -> int:
        s = self.llm.settings
        cap = s.concurrency_ceiling if s.adaptive_concurrency else s.max_concurrent_requests
        calls = max(1, self.label_calls)
        return min(1024, 2 * cap * calls + 8)

    # ---- the whole job ---------------------------------------------------------------
    async def _progress(self) -> _Progress:
        """Counts so far (a resumed job starts from its checkpoint, with its spent tally)."""
        job, usage = self.ctx.row, JobUsage.of(self.ctx.row)
        if job is not None and usage.tally:
            self.tally.merge_dict(usage.tally)  # resumed: keep what was spent
            self.model_version = job.model_version
            self.reused += usage.reused_count or 0
        job_id = self.ctx.job_id
        total = await self.store.count_items(job_id)
        progress = _Progress(total=total)
        progress.labelled = total - await self.store.count_items(job_id, ["pending"])
        progress.reasoned = total - await self.store.count_items(job_id, ["pending", "labelled"])
        done = progress.labelled + progress.reasoned
        await self.ctx.report(0.8 * done / (2 * max(total, 1)), "labelling", force=True)
        return progress

    async def run(self) -> JobOutcome:
        if self.spec.reuse:  # papers screened before under this setup: their results, free
            self.reused = await self.store.reuse_results(self.ctx.job_id)
        progress = await self._progress()
        started = time.monotonic()
        try:
            if self.spec.batch:  # stages 1-2 through the provider's Batch API
                await ProviderBatches(self).run(progress)
            else:
                await map_items(
                    self.ctx,
                    lambda item: self._paper(item, progress),
                    statuses=["pending", "labelled"],
                    window=self._window(),
                    stop=lambda: self.failure is not None,
                )
            await self._raise_if_stopped()
            clusters = await self._cluster_and_assign(progress)
            await self._raise_if_stopped()
            clusters = await self._final_clusters(clusters)
        finally:
            await self.writer.close()
            await self.save_usage(force=True)
        timings = progress.ms()
        timings["total"] = int((time.monotonic() - started) * 1000)
        return await self._outcome(progress.total, clusters, timings)

    async def _outcome(
        self, total: int, clusters: list[dict[str, Any]], timings: dict[str, int]
    ) -> JobOutcome:
        summary = self.tally.summary()
        usage = {
            **summary,
            "calls_per_paper": round(summary["calls"] / max(total, 1), 3),
            "tokens_per_paper": round(summary["total_tokens"] / max(total, 1), 1),
            "cost_per_paper_usd": round(summary["estimated_cost_usd"] / max(total, 1), 8),
            "scoring": self.spec.scoring,
            "tally": self.tally.to_dict(),
        }
        usage["reused_count"] = self.reused
        usage["screened_count"] = total - self.reused
        if self.spec.scoring == "distribution":  # papers sampled: no log-probabilities came
            usage["distribution_fallbacks"] = self.distribution_fallbacks
        failed = await self.store.items(
            self.ctx.job_id, statuses=["error"], limit=MAX_LISTED_ERRORS
        )
        return JobOutcome(
            clusters=clusters,
            stage="assignment",
            stage_timings=timings,
            estimated_cost_usd=summary["estimated_cost_usd"],
            usage=JobUsage.model_validate(usage),
            model_version=self.model_version,
            errors=failed_papers(failed),
        )

    async def _raise_if_stopped(self) -> None:
        if self.failure is None:
            failed = await self.store.count_items(self.ctx.job_id, ["error"])
            total = await self.store.count_items(self.ctx.job_id)
            if failed and failed == total:
                (item,) = await self.store.items(self.ctx.job_id, statuses=["error"], limit=1)
                error = ScreeningResult.of(item)
                self.failure = job_failure(
                    failed, total, "papers", error.error_category or "unknown", error.error or ""
                )
        if self.failure is not None:
            raise self.failure
        if self.ctx.cancelled():
            raise JobCancelled()


def failed_papers(items: list[ItemRow]) -> list[str]:
    """The job's ``errors`` list: one line per failed paper (the first MAX_LISTED_ERRORS)."""
    results = [(i.item_id, ScreeningResult.of(i)) for i in items[:MAX_LISTED_ERRORS]]
    return [f"Paper {paper}: {r.error_category}: {r.error}" for paper, r in results]


async def screen_papers(ctx: JobContext, spec: ScreeningJobSpec, llm: LLMClient) -> JobOutcome:
    """Run (or resume) the screening pipeline for the job in ``ctx``; results land in items."""
    return await ScreeningPipeline(ctx, spec, llm).run()
