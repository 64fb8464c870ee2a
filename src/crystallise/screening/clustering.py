"""Screening stages 3-4: themes from a sample of reasoning texts, then batched assignment.

The seed sent every reasoning text to one prompt, which breaks past a few thousand papers
and loses mid-context items. Here (after TopicGPT): themes come from a score-stratified,
shuffled sample split into token-budgeted chunks, candidate themes are merged in one call,
and papers are assigned in batches of 25 with a strict enum of theme ids plus "Other". No
request grows with the job.
"""

from __future__ import annotations

import asyncio
import json
import random
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, create_model

from crystallise.db.jobs import ItemRow
from crystallise.jobs.engine.items import drain
from crystallise.llm.errors import LLMError
from crystallise.llm.tokens import estimate_text_tokens
from crystallise.prompts import screening as prompts
from crystallise.screening.estimate import ASSIGN_BATCH, THEME_SAMPLE
from crystallise.screening.estimate import THEME_CHUNK_TOKENS as CHUNK_TOKENS
from crystallise.screening.schemas import ScreeningResult, ThemesOutput

if TYPE_CHECKING:
    from crystallise.db.async_jobs import AsyncJobStore
    from crystallise.jobs.engine.runner import JobContext
    from crystallise.jobs.engine.writer import ItemWriter
    from crystallise.llm.answers import ChatResult
    from crystallise.screening.pipeline import _Progress
    from crystallise.screening.spec import ScreeningJobSpec

THEMES_PER_CHUNK = 8
MAX_THEMES = 10


def _assignment_model(keys: list[str], theme_ids: list[int]) -> type[BaseModel]:
    key_literal: Any = Literal[tuple(keys)]  # type: ignore[valid-type]
    theme_literal: Any = Literal[tuple(theme_ids)]  # type: ignore[valid-type]
    item = create_model(
        "Assignment", paper_key=(key_literal, ...), theme_ids=(list[theme_literal], ...)
    )
    return create_model("AssignmentOutput", assignments=(list[item], ...))  # type: ignore[valid-type]


class ClusteringStages:
    """Stages 3-4 of :class:`~crystallise.screening.pipeline.ScreeningPipeline`."""

    ctx: JobContext
    spec: ScreeningJobSpec
    store: AsyncJobStore
    writer: ItemWriter
    failure: LLMError | None
    context: str

    async def _chat(
        self, main: bool, messages: list[dict[str, Any]], *, assign: bool = False, **kw: Any
    ) -> ChatResult:
        raise NotImplementedError

    def _halted(self) -> bool:
        raise NotImplementedError

    # ---- stage 3: themes -------------------------------------------------------------
    def _selected(self, score: float) -> bool:
        if self.spec.clusters_type == "include":
            return score >= self.spec.threshold
        if self.spec.clusters_type == "exclude":
            return score < self.spec.threshold
        return True

    def _sample(self, rows: list[tuple[int, float, str]]) -> list[tuple[float, str]]:
        """Score-stratified, shuffled sample (TopicGPT): every score band is represented."""
        rng = random.Random(self.ctx.job_id)
        strata: dict[int, list[tuple[float, str]]] = {}
        for _, score, text in rows:
            strata.setdefault(round(score), []).append((score, text))
        for members in strata.values():
            rng.shuffle(members)
        sample: list[tuple[float, str]] = []
        while len(sample) < THEME_SAMPLE and any(strata.values()):
            for band in sorted(strata):
                if strata[band] and len(sample) < THEME_SAMPLE:
                    sample.append(strata[band].pop())
        rng.shuffle(sample)
        return sample

    async def _themes(self, rows: list[tuple[int, float, str]]) -> list[dict[str, Any]]:
        """Themes of a sample of the reasons: one call per chunk of them, then one call to
        merge the chunks' themes when there are several (or too many)."""
        chunks = _chunks(self._sample(rows))
        system = (prompts.THEME_GENERATION.system or "").format(max_themes=THEMES_PER_CHUNK)
        calls = [
            self._ask_themes(
                system,
                prompts.THEME_GENERATION.render_user(
                    job_context=self.context, texts="\n".join(chunk)
                ),
            )
            for chunk in chunks
        ]
        candidates = [theme for found in await asyncio.gather(*calls) for theme in found]
        if len(chunks) > 1 or len(candidates) > MAX_THEMES:
            listing = "\n".join(f"- {t.label}: {t.description}" for t in candidates)
            candidates = await self._ask_themes(
                (prompts.THEME_MERGE.system or "").format(max_themes=MAX_THEMES),
                prompts.THEME_MERGE.render_user(job_context=self.context, themes=listing),
            )
        unique: dict[str, Any] = {}
        for theme in candidates:
            unique.setdefault(theme.label.strip().lower(), theme)
        return [
            {"cluster_id": i, "label": t.label, "description": t.description, "count": 0}
            for i, t in enumerate(list(unique.values())[:MAX_THEMES], 1)
        ]

    async def _ask_themes(self, system: str, user: str) -> list[Any]:
        messages = [{"role": "system", "content": system}, {"role": "user", "content": user}]
        result = await self._chat(False, messages, output_schema=ThemesOutput)
        return list(result.parsed.themes)

    # ---- stage 4: assignment ---------------------------------------------------------
    async def _assign_batch(
        self,
        batch: list[ItemRow],
        clusters: list[dict[str, Any]],
        other_id: int,
        progress: list[int],
        total: int,
    ) -> None:
        if self._halted():
            return
        keys = [f"P{i}" for i in range(1, len(batch) + 1)]
        theme_ids = [c["cluster_id"] for c in clusters] + [other_id]
        schema = _assignment_model(keys, theme_ids)
        listing = "\n".join(
            f"{c['cluster_id']}: {c['label']} — {c['description']}" for c in clusters
        )
        listing += f"\n{other_id}: Other — fits none of the themes above"
        system = (prompts.ASSIGNMENT.system or "").format(themes=listing)
        results = [ScreeningResult.of(item) for item in batch]
        papers = "\n".join(
            f"{key}: (score {r.final_score or 0:.1f}) {json.dumps(r.reasoning or '')}"
            for key, r in zip(keys, results, strict=True)
        )
        try:
            result = await self._chat(
                False,
                [
                    {"role": "system", "content": system},
                    {"role": "user", "content": prompts.ASSIGNMENT.render_user(papers=papers)},
                ],
                assign=True,
                output_schema=schema,
            )
        except LLMError as exc:
            if self.failure is None:
                self.failure = exc
            return
        chosen: dict[str, list[int]] = {}
        for assignment in result.parsed.assignments:
            ids = list(dict.fromkeys(assignment.theme_ids))[:3]
            chosen.setdefault(assignment.paper_key, ids)
        for key, item, r in zip(keys, batch, results, strict=True):
            ids = chosen.get(key) or [other_id]  # repair: a paper the model skipped
            self.writer.put(item.seq, "done", r.updated(cluster_id=ids[0], cluster_ids=ids))
        progress[0] += len(batch)
        await self.ctx.report(0.9 + 0.1 * progress[0] / max(total, 1), "assignment")

    async def _cluster_and_assign(self, progress: _Progress) -> list[dict[str, Any]]:
        job = await self.store.get_job("screening", self.ctx.job_id)
        clusters: list[dict[str, Any]] = list(job.clusters or []) if job else []
        selected: list[ItemRow] = []
        rows: list[tuple[int, float, str]] = []
        unselected: list[tuple[int, str, dict[str, Any] | None]] = []
        for item in await self.store.all_items(self.ctx.job_id, ["reasoned"]):
            result = ScreeningResult.of(item)
            score = float(result.final_score or 0.0)
            if self._selected(score):
                selected.append(item)
                rows.append((item.seq, score, result.reasoning or ""))
            else:
                unassigned = result.updated(cluster_id=None, cluster_ids=[])
                unselected.append((item.seq, "done", unassigned.stored()))
        if unselected:
            await self.store.save_items(self.ctx.job_id, unselected)
        if not selected:
            return clusters
        await self.ctx.report(0.8, "clustering", force=True)
        progress.mark("clustering")
        if not clusters:
            clusters = await self._themes(rows)
            await self.store.update_job("screening", self.ctx.job_id, clusters=clusters)
        progress.mark("clustering")
        await self.ctx.report(0.9, "assignment", force=True)
        progress.mark("assignment")
        other_id = len(clusters) + 1
        done = [0]
        batches = [selected[i : i + ASSIGN_BATCH] for i in range(0, len(selected), ASSIGN_BATCH)]
        await drain(
            {
                asyncio.create_task(self._assign_batch(b, clusters, other_id, done, len(selected)))
                for b in batches
            },
            self._halted,
        )
        await self.writer.flush()
        progress.mark("assignment")
        return clusters

    async def _final_clusters(self, clusters: list[dict[str, Any]]) -> list[dict[str, Any]]:
        counts: dict[int, int] = {}
        for item in await self.store.all_items(self.ctx.job_id):
            for cid in ScreeningResult.of(item).cluster_ids or []:
                counts[cid] = counts.get(cid, 0) + 1
        out = [{**c, "count": counts.get(c["cluster_id"], 0)} for c in clusters]
        other_id = len(clusters) + 1
        if counts.get(other_id):
            out.append(
                {
                    "cluster_id": other_id,
                    "label": "Other",
                    "description": "Reasons that fit none of the themes.",
                    "count": counts[other_id],
                }
            )
        return out


def _chunks(sample: list[tuple[float, str]]) -> list[list[str]]:
    """The sampled reasons as prompt lines, packed into chunks of at most CHUNK_TOKENS."""
    chunks: list[list[str]] = [[]]
    budget = 0
    for score, text in sample:
        line = f"- (score {score:.1f}) {text}"
        cost = estimate_text_tokens(line) + 4
        if chunks[-1] and budget + cost > CHUNK_TOKENS:
            chunks.append([])
            budget = 0
        chunks[-1].append(line)
        budget += cost
    return chunks
