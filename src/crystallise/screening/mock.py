"""Mock screening: deterministic scores and reasoning from each paper's content, no model call."""

from __future__ import annotations

import asyncio
import hashlib
import re
from typing import Any

from crystallise.db.jobs import ItemRow
from crystallise.jobs.engine.items import map_items
from crystallise.jobs.engine.runner import JobContext, JobOutcome
from crystallise.jobs.engine.usage import JobUsage
from crystallise.screening.assessment import mock_assessment
from crystallise.screening.criteria import Criterion
from crystallise.screening.schemas import ScreeningResult
from crystallise.screening.scoring import score_fields
from crystallise.screening.spec import ScreeningJobSpec

MOCK_WINDOW = 64  # items in flight: mock items are CPU only, this just bounds the tasks

_CLUSTERS = [
    {
        "cluster_id": 1,
        "label": "Eligible studies",
        "description": "Mock mode: papers that appear to meet the criteria.",
    },
    {
        "cluster_id": 2,
        "label": "Unclear from abstract",
        "description": "Mock mode: eligibility cannot be decided from the abstract.",
    },
    {
        "cluster_id": 3,
        "label": "Ineligible studies",
        "description": "Mock mode: papers that appear to violate a criterion.",
    },
]


_WORD = re.compile(r"[a-z]{4,}")


def _keywords(criteria: list[Criterion], kind: str) -> set[str]:
    return {w for c in criteria if c.kind == kind for w in _WORD.findall(c.text.lower())}


def mock_scores(
    paper: dict[str, Any], repetitions: int, criteria: list[Criterion] | None = None
) -> list[int]:
    """Deterministic 1-5 scores from the paper's content: overlap with the inclusion
    criteria's words raises the score, exclusion words lower it, a hash adds per-run jitter."""
    text = f"{paper.get('title')} {paper.get('abstract')}".lower()
    words = set(_WORD.findall(text))
    include = _keywords(criteria or [], "include")
    exclude = _keywords(criteria or [], "exclude")
    digest = hashlib.sha256(f"{paper.get('id')}|{text}".encode()).digest()
    overlap = len(words & include) / len(include) if include else digest[0] % 5 / 4
    base = 1 + round(4 * overlap)
    if exclude and len(words & exclude) >= max(1, len(exclude) // 2):
        base -= 2
    return [min(5, max(1, base + (digest[i + 1] % 3) - 1)) for i in range(repetitions)]


def _cluster_for(score: float) -> int:
    return 1 if score >= 3.5 else (2 if score >= 2.5 else 3)


async def mock_screen_papers(
    ctx: JobContext, spec: ScreeningJobSpec, delay_s: float = 0.0
) -> JobOutcome:
    """Same job machinery as the real pipeline (items, progress, cancel), canned content;
    ``delay_s`` per paper (CRYSTALLISE_MOCK_DELAY_S) to rehearse progress and resume."""
    total = await ctx.store.count_items(ctx.job_id)
    done = [total - await ctx.store.count_items(ctx.job_id, ["pending", "labelled"])]

    async def one(item: ItemRow) -> None:
        if delay_s:
            await asyncio.sleep(delay_s)
        ctx.writer.put(item.seq, "done", mock_result(item.input, spec))
        done[0] += 1
        stage = "labelling" if done[0] < total / 2 else "reasoning"
        await ctx.report(0.8 * done[0] / max(total, 1), stage)

    await map_items(ctx, one, statuses=["pending", "labelled"], window=MOCK_WINDOW)
    await ctx.writer.close()
    ctx.raise_if_cancelled()
    await ctx.report(0.9, "clustering", force=True)
    await ctx.report(1.0, "assignment", force=True)
    counts = {c["cluster_id"]: 0 for c in _CLUSTERS}
    for item in await ctx.store.all_items(ctx.job_id, ["done"]):
        for cid in ScreeningResult.of(item).cluster_ids or []:
            counts[cid] += 1
    clusters = [
        {**c, "count": counts[c["cluster_id"]]} for c in _CLUSTERS if counts[c["cluster_id"]]
    ]
    return JobOutcome(
        clusters=clusters,
        stage="assignment",
        stage_timings={"labelling": 0, "reasoning": 0, "clustering": 0, "assignment": 0},
        estimated_cost_usd=0.0,
        usage=JobUsage(
            input_tokens=0, output_tokens=0, total_tokens=0, estimated_cost_usd=0.0, calls=0
        ),
        model_version="mock",
    )


def mock_result(paper: dict[str, Any], spec: ScreeningJobSpec) -> ScreeningResult:
    """One paper's canned result: content-derived scores, a mock reason and its cluster."""
    scored = score_fields(paper, mock_scores(paper, spec.repetitions, spec.criteria))
    final = scored.final_score or 0.0
    title = paper.get("title") or "this paper"
    cid = _cluster_for(final)
    selected = spec.clusters_type is None or (
        (final >= spec.threshold) == (spec.clusters_type == "include")
    )
    verdict = "met" if cid == 1 else ("unclear" if cid == 2 else "unmet")
    return scored.updated(
        reasoning=f"Mock mode: '{title[:80]}' scored {final:.1f} against "
        f"{len(spec.criteria)} criteria. Run without mock for real reasoning.",
        verdict=verdict,
        decisive_criteria=[c.id for c in spec.criteria[:1]],
        criteria_assessment=mock_assessment(spec.criteria, verdict, paper),
        cluster_id=cid if selected else None,
        cluster_ids=[cid] if selected else [],
    )
