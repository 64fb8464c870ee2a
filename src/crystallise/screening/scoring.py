"""How a paper's 1-5 score is measured: ``samples`` (``repetitions`` independent answers,
their mean and spread) or ``distribution`` (one answer's token log-probabilities at the
score digit: P(score = 1..5), its mean and spread in one call instead of N).

The distribution is read where the answer writes its score (``{"score": 4}``): the model's
top alternatives at that token, renormalised over the five digits. Servers that constrain
decoding with a grammar (llama.cpp) report the unconstrained alternatives (``0``, a line
break, ...) though only 1-5 could be written there; renormalising over 1-5 is exactly what
the constrained sampler does, so the other alternatives are dropped, not held against the
answer. It needs a model that
returns log-probabilities (the gpt-4.1 family, most local servers); where an answer comes
back without them the paper falls back to samples and its result says so.
"""

from __future__ import annotations

import math
import re
import statistics
from typing import Any, Literal

from crystallise.screening.schemas import CriterionVerdict, ScreeningResult, has_text

Scoring = Literal["samples", "distribution"]
# alternatives asked for at each token (OpenAI's maximum): enough that all five scores are
# usually among them even when a grammar-constrained server reports unconstrained ones
TOP_LOGPROBS = 20
PLAUSIBLE = 0.1  # a score at least this likely counts toward max_score and score_spread
_DIGITS = "12345"
_SCORE_KEY = re.compile(r'"score"\s*:\s*$')


def _digit(token: Any) -> str | None:
    """The score a token writes (``3``, `` 3``, ``3}``), or None."""
    if not isinstance(token, str):
        return None
    text = token.strip()
    if text[:1] in _DIGITS and text[:1] and text[1:] in ("", "}", ","):
        return text[0]
    return None


def score_distribution(tokens: list[dict[str, Any]] | None) -> list[float] | None:
    """P(score = 1..5) at the score digit of a ``{"score": N}`` answer, renormalised over the
    digits among its alternatives; None when the answer carries no log-probabilities there."""
    text = ""
    for token in tokens or []:
        piece = token.get("token") if isinstance(token, dict) else None
        if not isinstance(piece, str):
            return None
        if _digit(piece) is not None and _SCORE_KEY.search(text):
            probs = [0.0] * 5
            for alt in token.get("top_logprobs") or [token]:
                digit = _digit(alt.get("token")) if isinstance(alt, dict) else None
                logprob = alt.get("logprob") if isinstance(alt, dict) else None
                if digit is None or not isinstance(logprob, (int, float)):
                    continue
                if math.isfinite(logprob) and logprob <= 0:
                    probs[int(digit) - 1] += math.exp(logprob)
            total = sum(probs)
            if total <= 0:
                return None
            return [p / total for p in probs]
        text += piece
    return None


def _flags(paper: dict[str, Any], spread: int) -> list[str]:
    flags = [] if has_text(paper.get("abstract")) else ["no_abstract"]
    if spread >= 2:
        flags.append("high_disagreement")  # repetitions (or likely scores) disagree
    return flags


def score_fields(paper: dict[str, Any], scores: list[int]) -> ScreeningResult:
    """Per-repetition scores, their mean (``final_score``) and flags for human attention."""
    mean = round(statistics.fmean(scores), 4)
    spread = max(scores) - min(scores)
    return ScreeningResult.model_validate(
        {
            "id": paper["id"],
            **{f"score_{i}": s for i, s in enumerate(scores, 1)},
            "scores": scores,
            "mean_score": mean,
            "final_score": mean,
            "max_score": max(scores),
            "score_spread": spread,
            "flags": _flags(paper, spread),
            "scoring": "samples",
        }
    )


def distribution_fields(paper: dict[str, Any], probs: list[float]) -> ScreeningResult:
    """The result fields of a distribution-scored paper: the most likely score as its one
    score, the expected score as ``mean_score``/``final_score``, the standard deviation,
    and the plausible range (scores at least PLAUSIBLE likely) as max and spread."""
    mode = max(range(5), key=lambda i: probs[i]) + 1
    mean = sum((i + 1) * p for i, p in enumerate(probs))
    sd = math.sqrt(sum(p * (i + 1 - mean) ** 2 for i, p in enumerate(probs)))
    plausible = [i + 1 for i, p in enumerate(probs) if p >= PLAUSIBLE] or [mode]
    spread = max(plausible) - min(plausible)
    return ScreeningResult.model_validate(
        {
            "id": paper["id"],
            "score_1": mode,
            "scores": [mode],
            "mean_score": round(mean, 4),
            "final_score": round(mean, 4),
            "max_score": max(plausible),
            "score_spread": spread,
            "score_distribution": [round(p, 4) for p in probs],
            "score_sd": round(sd, 4),
            "flags": _flags(paper, spread),
            "scoring": "distribution",
        }
    )


def rating_text(result: ScreeningResult) -> str:
    """How the reasoning prompt states a paper's scores."""
    probs = result.score_distribution
    if probs:
        shown = ", ".join(f"{p:.2f}" for p in probs)
        return f"P(score = 1..5) = {shown} (expected {result.mean_score or 0:.2f})"
    scores = result.scores or []
    return ", ".join(map(str, scores)) + f" (mean {statistics.fmean(scores):.2f})"


def reasoned(
    labelled: ScreeningResult, parsed: Any, assessment: list[CriterionVerdict] | None = None
) -> ScreeningResult:
    """A labelled result with its reasoning, verdict, decisive criteria and per-criterion
    assessment (screening/assessment.py); flagged when the verdict contradicts the scores."""
    mean = labelled.mean_score or 0
    flags = list(labelled.flags or [])
    if (parsed.verdict == "unmet" and mean >= 4) or (parsed.verdict == "met" and mean <= 2):
        flags.append("verdict_score_conflict")
    return labelled.updated(
        reasoning=parsed.reasoning,
        verdict=parsed.verdict,
        decisive_criteria=[c for c in parsed.decisive_criteria if c != "none"],
        criteria_assessment=assessment or [],
        flags=flags,
    )
