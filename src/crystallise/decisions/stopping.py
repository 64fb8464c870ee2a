"""When prioritised screening may stop: Callaghan & Müller-Hansen's hypergeometric test
(Systematic Reviews 9:273, 2020; buscarR ``calculate_h0``).

Screening went in ranked order, so likely includes came first. For every k, treat the last k
screened records as if drawn at random from themselves plus the unscreened rest (conservative:
the ranking put includes early, so the rest holds fewer than a random draw suggests) and test
H0 "recall < target": under H0 the urn holds at least ``floor(found / target) + 1 - (found -
r_k)`` includes, and seeing only ``r_k`` of them in k draws has hypergeometric probability
``p_k``. The p-value is the smallest ``p_k``; stop when it is below ``1 - confidence``.
"""

from __future__ import annotations

import math

import numpy as np
from pydantic import BaseModel

ESTIMATE_WINDOW_SHARE = 0.1  # the recall point estimate uses the last 10% screened (>= 20)


class StoppingResult(BaseModel):
    safe_to_stop: bool
    p_value: float
    recall_estimate: float | None
    includes_found: int
    screened_count: int
    total_records: int
    target_recall: float
    confidence: float


def stopping(
    labels: list[int], total_records: int, target: float = 0.95, confidence: float = 0.95
) -> StoppingResult:
    """Test H0 "recall < target" after screening ``labels`` (in screening order)."""
    seen = np.asarray(labels, dtype=np.int64)
    n_seen = len(seen)
    found = int(seen.sum())
    remaining = total_records - n_seen
    p_value = 1.0
    if found > 0 and n_seen > 0:
        from scipy.stats import hypergeom  # imported on first use: fast server start-up

        newest_first = seen[::-1]
        r_all = np.cumsum(newest_first)  # includes among the last k screened, k = 1..n
        # For a fixed r_k, p_k falls as k grows (the unscreened part of the urn stays the
        # same size while the urn grows), so each run of windows with the same r_k has its
        # minimum at its largest k: just before the next include, or the whole sequence.
        k = np.flatnonzero(np.append(newest_first[1:] == 1, True)) + 1
        r_k = r_all[k - 1]
        urn_includes = math.floor(found / target) + 1 - (found - r_k)
        urn = remaining + k
        p = hypergeom.cdf(r_k, urn, np.minimum(urn_includes, urn), k)
        p = np.where(urn_includes > urn, 0.0, p)  # H0 impossible for this window
        p_value = float(np.clip(p.min(), 0.0, 1.0))
    return StoppingResult(
        safe_to_stop=p_value < 1 - confidence,
        p_value=p_value,
        recall_estimate=_recall_estimate(seen, remaining),
        includes_found=found,
        screened_count=n_seen,
        total_records=total_records,
        target_recall=target,
        confidence=confidence,
    )


def _recall_estimate(seen: np.ndarray, remaining: int) -> float | None:
    """Found / (found + remaining × the include rate of the last 10% screened)."""
    found = int(seen.sum())
    if found == 0:
        return None
    window = max(20, int(len(seen) * ESTIMATE_WINDOW_SHARE))
    rate = float(seen[-window:].mean())
    return found / (found + remaining * rate)


HEURISTIC_SHARE = 0.10  # a run of excludes as long as 10% of the records (at least 50)
HEURISTIC_MIN_RUN = 50


class HeuristicStop(BaseModel):
    safe_to_stop: bool
    consecutive_excludes: int
    run_needed: int


def consecutive_excludes(labels: list[int], total_records: int) -> HeuristicStop:
    """SAFE's data-driven heuristic (Boetje & van de Schoot 2024): stop once the last
    ``max(50, 10% of the records)`` screened were all excludes, after at least one include.
    A heuristic, not a guarantee: the simulation is its only evidence (evals/RESULTS.md: the
    target met in every run on four reviews, in 1 of 3 on bannach_brown_2019)."""
    seen = np.asarray(labels, dtype=np.int64)
    includes = np.flatnonzero(seen == 1)
    run = len(seen) - 1 - int(includes[-1]) if len(includes) else len(seen)
    needed = max(HEURISTIC_MIN_RUN, math.ceil(HEURISTIC_SHARE * total_records))
    return HeuristicStop(
        safe_to_stop=bool(len(includes)) and run >= needed,
        consecutive_excludes=run,
        run_needed=needed,
    )
