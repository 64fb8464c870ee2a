"""Screening a reviewer can audit: a verdict per criterion with the words that show it, the
criterion that excludes a paper, and the PRISMA 2020 counts of a job.

- ``criteria_assessment`` (one per criterion, in the job's order) comes from the reasoning
  stage's own call: ``criterion`` (its name), ``id``, ``type``, ``verdict`` (met | not_met |
  unclear), ``quote`` (a short span of the title or abstract, or null) and ``quote_verified``
  (found in the paper's text after the normalisation the indexer's evidence check uses;
  quotes under 3 characters never count). A criterion the model left out is ``unclear``.
- ``exclusion_reason`` of a paper below the threshold: the failed criteria are the include
  criteria ``not_met`` and the exclude criteria ``met``; of these the rule picks the first
  with a verified quote, else the first, in the job's order (include criteria first, as the
  caller listed them); with none failed the reason is ``"unclear"``.
"""

from __future__ import annotations

from typing import Any

from crystallise.common.quotes import verify_quotes
from crystallise.screening.criteria import Criterion
from crystallise.screening.schemas import CriterionVerdict, ScreeningResult

VERDICTS = ("met", "not_met", "unclear")


def assess(parsed: Any, criteria: list[Criterion], paper: dict[str, Any]) -> list[CriterionVerdict]:
    """The model's per-criterion answers, one per job criterion, quotes checked."""
    answers = {getattr(a, "criterion", None): a for a in getattr(parsed, "criteria_assessment", [])}
    title, abstract = str(paper.get("title") or ""), str(paper.get("abstract") or "")
    out = []
    for criterion in criteria:
        answer = answers.get(criterion.id)
        verdict = getattr(answer, "verdict", "unclear") if answer is not None else "unclear"
        quote = str(getattr(answer, "quote", "") or "").strip()[:500] or None
        verified = quote is not None and verify_quotes([quote], title, abstract)[0] is True
        out.append(
            CriterionVerdict(
                criterion=criterion.label,
                id=criterion.id,
                type=criterion.kind,
                verdict=verdict if verdict in VERDICTS else "unclear",
                quote=quote,
                quote_verified=verified,
            )
        )
    return out


def failed(assessment: list[CriterionVerdict]) -> list[CriterionVerdict]:
    return [a for a in assessment if a.fails]


def exclusion_reason(result: ScreeningResult, threshold: float) -> str | None:
    """The criterion that excludes a paper below ``threshold`` (the rule above); None for a
    paper at or above it, or one without a score."""
    score = result.final_score
    if score is None or score >= threshold:
        return None
    candidates = failed(result.criteria_assessment or [])
    if not candidates:
        return "unclear"
    verified = [a for a in candidates if a.quote_verified]
    return (verified or candidates)[0].criterion


def with_reason(result: ScreeningResult, threshold: float) -> ScreeningResult:
    """``result`` with its ``exclusion_reason`` at ``threshold`` (set when it has one)."""
    reason = exclusion_reason(result, threshold)
    if reason is not None:
        result.exclusion_reason = reason
    return result


def mock_assessment(
    criteria: list[Criterion], verdict: str, paper: dict[str, Any]
) -> list[CriterionVerdict]:
    """Mock mode's deterministic assessment, consistent with its verdict: all criteria hold
    ("met"), none can be told ("unclear"), or the first criterion fails ("unmet"), quoting
    the title's first words (a quote that verifies)."""
    quote = " ".join(str(paper.get("title") or "").split()[:8]) or None
    out = []
    for index, criterion in enumerate(criteria):
        holds = "met" if criterion.kind == "include" else "not_met"
        fails = "not_met" if criterion.kind == "include" else "met"
        answer = {"met": holds, "unclear": "unclear"}.get(verdict)
        answer = answer or (fails if index == 0 else "unclear")
        cited = quote if index == 0 and answer != "unclear" else None
        title = str(paper.get("title") or "")
        verified = cited is not None and verify_quotes([cited], title, "")[0] is True
        out.append(
            CriterionVerdict.model_validate(
                {
                    "criterion": criterion.label,
                    "id": criterion.id,
                    "type": criterion.kind,
                    "verdict": answer,
                    "quote": cited,
                    "quote_verified": verified,
                }
            )
        )
    return out
