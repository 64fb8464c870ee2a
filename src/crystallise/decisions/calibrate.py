"""The highest score threshold whose recall, estimated on a labelled simple random sample,
clears a target with a stated confidence.

Among the sample's ``n`` includes, ``x(t)`` score at or above threshold ``t``. The one-sided
Clopper-Pearson lower bound of ``x/n`` is a conservative bound on the recall of ``t`` over all
includes. ``x(t)`` falls as ``t`` rises, so the highest passing threshold is the score of the
``k*``-th highest sampled include, where ``k*`` is the fewest successes whose bound clears the
target: a distribution-free order-statistic bound (the conformal quantile), valid for the
chosen threshold, not only for a fixed one. Ties (1-5 scores) only raise recall. Trying
several aggregation rules on one sample is a multiple comparison: Bonferroni (alpha / rules).
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from typing import Literal

import numpy as np
from pydantic import BaseModel

DEFAULT_RULES = ("mean", "max")


@dataclass(frozen=True)
class ScoredRecord:
    id: str
    scores: list[float]  # per-repetition scores (or the one final score)
    label: int | None  # 1 include, 0 exclude, None unlabelled (outside the sample)


class CalibrationFigures(BaseModel):
    """What a calibration found (the HTTP answer adds the request's targets and a report)."""

    status: Literal["ok", "insufficient_labels"]
    rule: str | None
    threshold: float | None
    recall_estimate: float | None
    recall_lower_bound: float | None
    excluded_count: int
    workload_reduction: float
    sample_size: int
    sample_includes: int
    labels_needed: int
    total_records: int


class Calibration(CalibrationFigures):
    alpha_per_rule: float
    rules: tuple[str, ...]


def aggregate(rule: str, scores: list[float]) -> float:
    """One score per record: ``mean``, ``max``, ``min`` or ``k_of_n:K`` (the K-th highest
    repetition score, i.e. "at least K repetitions at or above the threshold")."""
    if rule == "mean":
        return statistics.fmean(scores)
    if rule == "max":
        return max(scores)
    if rule == "min":
        return min(scores)
    k = int(rule.split(":", 1)[1])
    ordered = sorted(scores, reverse=True)
    return ordered[min(k, len(ordered)) - 1]


def valid_rule(rule: str) -> bool:
    if rule in ("mean", "max", "min"):
        return True
    head, _, k = rule.partition(":")
    return head == "k_of_n" and k.isdigit() and int(k) >= 1


def cp_lower(x: int, n: int, alpha: float) -> float:
    """One-sided Clopper-Pearson lower confidence bound of a proportion x/n."""
    if x <= 0 or n <= 0:
        return 0.0
    from scipy.stats import beta  # imported on first use: keeps server start-up fast

    return float(beta.ppf(alpha, x, n - x + 1))


def successes_needed(n: int, target: float, alpha: float) -> int | None:
    """The fewest successes of ``n`` whose lower bound clears ``target`` (None: not even n)."""
    if n <= 0 or cp_lower(n, n, alpha) < target:
        return None
    lo, hi = 1, n
    while lo < hi:
        mid = (lo + hi) // 2
        if cp_lower(mid, n, alpha) >= target:
            hi = mid
        else:
            lo = mid + 1
    return lo


def includes_needed(target: float, alpha: float) -> int:
    """Sampled includes needed when every one of them scores above the threshold."""
    return math.ceil(math.log(alpha) / math.log(target))


def _for_rule(
    rule: str, records: list[ScoredRecord], target: float, alpha: float
) -> tuple[float, int, int] | None:
    """(threshold, includes at or above it, records excluded) for one rule, or None."""
    scores = np.array([aggregate(rule, r.scores) for r in records], dtype=float)
    includes = np.sort([s for s, r in zip(scores, records, strict=True) if r.label == 1])[::-1]
    k = successes_needed(len(includes), target, alpha)
    if k is None:
        return None
    threshold = float(includes[k - 1])
    covered = int(np.count_nonzero(includes >= threshold))
    excluded = int(np.count_nonzero(scores < threshold))
    return threshold, covered, excluded


def calibrate(
    records: list[ScoredRecord],
    target: float = 0.95,
    confidence: float = 0.95,
    rules: tuple[str, ...] = DEFAULT_RULES,
) -> Calibration:
    """The rule and threshold that exclude the most records with the recall guarantee."""
    alpha = (1 - confidence) / len(rules)
    labelled = [r for r in records if r.label is not None]
    n = sum(1 for r in labelled if r.label == 1)
    best: tuple[str, float, int, int] | None = None
    for rule in rules:
        found = _for_rule(rule, records, target, alpha)
        if found is not None and found[2] > 0 and (best is None or found[2] > best[3]):
            best = (rule, *found)
    base = {
        "sample_size": len(labelled),
        "sample_includes": n,
        "total_records": len(records),
        "alpha_per_rule": alpha,
        "rules": rules,
    }
    if best is None:
        return Calibration(
            status="insufficient_labels",
            rule=None,
            threshold=None,
            recall_estimate=None,
            recall_lower_bound=None,
            excluded_count=0,
            workload_reduction=0.0,
            labels_needed=_labels_needed(len(labelled), n, target, alpha),
            **base,  # type: ignore[arg-type]
        )
    rule, threshold, covered, excluded = best
    return Calibration(
        status="ok",
        rule=rule,
        threshold=threshold,
        recall_estimate=covered / n,
        recall_lower_bound=cp_lower(covered, n, alpha),
        excluded_count=excluded,
        workload_reduction=excluded / len(records),
        labels_needed=0,
        **base,  # type: ignore[arg-type]
    )


def _labels_needed(labelled: int, includes: int, target: float, alpha: float) -> int:
    """Expected further random labels before a threshold can be supported: enough for the
    minimum number of sampled includes at the sample's prevalence (Jeffreys-smoothed); when
    the sample already has that many, as many labels again (its includes score too low)."""
    needed = includes_needed(target, alpha)
    prevalence = (includes + 0.5) / (labelled + 1)
    if includes < needed:
        return math.ceil((needed - includes) / prevalence)
    return max(labelled, 1)
