"""The decision methods' statistical promises, checked by simulation (issue 15).

Each test would fail if the claim were false: a calibration that reported its point estimate
instead of a lower bound covers the target in about half the runs, not 95%; a stopping rule
that stopped after a fixed share of records misses the target often."""

from __future__ import annotations

import random

import numpy as np

from crystallise.decisions.calibrate import ScoredRecord, calibrate, cp_lower, includes_needed
from crystallise.decisions.stopping import stopping


def _population(rng: random.Random, n: int, prevalence: float) -> list[tuple[int, list[float]]]:
    """Labels and 5 noisy 1-5 scores each: includes centre on 4, excludes on 2 (sd 1.2),
    so some includes score low: recall at any useful threshold is below 1."""
    out = []
    for _ in range(n):
        label = int(rng.random() < prevalence)
        centre = 4.0 if label else 2.0
        out.append(
            (label, [float(min(5, max(1, round(rng.gauss(centre, 1.2))))) for _ in range(5)])
        )
    return out


def _true_recall(population: list[tuple[int, list[float]]], rule: str, threshold: float) -> float:
    from crystallise.decisions.calibrate import aggregate

    includes = [aggregate(rule, s) for label, s in population if label]
    return sum(x >= threshold for x in includes) / len(includes)


def _continuous(rng: random.Random, n: int, prevalence: float) -> list[tuple[int, list[float]]]:
    """One continuous score per record (no ties: the bound's coverage is near nominal)."""
    out = []
    for _ in range(n):
        label = int(rng.random() < prevalence)
        out.append((label, [rng.gauss(3.5 if label else 2.0, 0.8)]))
    return out


def test_calibrated_threshold_meets_the_target_with_the_promised_confidence() -> None:
    rng = random.Random(7)
    population = _continuous(rng, 4000, 0.08)
    runs = met = ok = 0
    for seed in range(300):
        r = random.Random(seed)
        sample = set(r.sample(range(len(population)), 1500))
        records = [
            ScoredRecord(str(i), [float(x) for x in s], label if i in sample else None)
            for i, (label, s) in enumerate(population)
        ]
        result = calibrate(records, target=0.9, confidence=0.95)
        runs += 1
        if result.status != "ok":
            continue
        ok += 1
        assert result.recall_lower_bound is not None and result.recall_lower_bound >= 0.9
        met += _true_recall(population, result.rule or "", result.threshold or 0) >= 0.9
    assert ok >= 0.9 * runs  # the sample size supports a threshold almost always
    assert met / ok >= 0.93, f"coverage {met / ok:.3f} below the promised 0.95 (tolerance)"


def test_too_few_sampled_includes_is_insufficient_not_a_threshold() -> None:
    rng = random.Random(3)
    population = _population(rng, 3000, 0.01)
    records = [
        ScoredRecord(str(i), [float(x) for x in s], label if i < 300 else None)
        for i, (label, s) in enumerate(population)
    ]
    result = calibrate(records, target=0.95, confidence=0.95)
    assert result.status == "insufficient_labels" and result.threshold is None
    assert result.labels_needed > 1000  # ~59 includes at ~1% prevalence
    assert includes_needed(0.95, 0.025) == 72


def test_clopper_pearson_bound_matches_known_values() -> None:
    assert cp_lower(0, 10, 0.05) == 0.0
    assert abs(cp_lower(10, 10, 0.05) - 0.05 ** (1 / 10)) < 1e-9
    assert abs(cp_lower(59, 59, 0.05) - 0.9505) < 1e-3


def _screening_order(rng: random.Random, labels: list[int]) -> list[int]:
    """A ranking with real but imperfect signal (includes tend to come first)."""
    keyed = [(rng.gauss(1.5 if y else 0.0, 1.0), y) for y in labels]
    return [y for _, y in sorted(keyed, key=lambda t: -t[0])]


def test_stopping_rule_meets_its_recall_target_with_the_promised_confidence() -> None:
    rng = random.Random(11)
    total, prevalence, batch = 1500, 0.06, 25
    met = runs = stopped_early = 0
    for _ in range(150):
        labels = [int(rng.random() < prevalence) for _ in range(total)]
        if sum(labels) == 0:
            continue
        order = _screening_order(rng, labels)
        screened = total
        for n in range(batch, total + 1, batch):
            if stopping(order[:n], total, target=0.95, confidence=0.95).safe_to_stop:
                screened = n
                break
        runs += 1
        stopped_early += screened < total
        met += sum(order[:screened]) / sum(labels) >= 0.95
    assert met / runs >= 0.93, f"target met in {met / runs:.3f} of runs"
    assert stopped_early >= 0.5 * runs  # and it does save work


def test_stopping_needs_evidence() -> None:
    assert not stopping([1] * 50 + [0] * 500, 2000).safe_to_stop  # 1,450 never looked at
    assert stopping([1] * 50 + [0] * 1400, 1460).safe_to_stop
    assert stopping([0] * 100, 1000).p_value == 1.0  # no include found: nothing to test
    assert np.isclose(stopping([1, 0], 2).p_value, 0.0)


def test_stopping_p_value_equals_the_minimum_over_every_window() -> None:
    """The fast path (run ends only) gives buscarR's minimum over all windows exactly."""
    import math

    from scipy.stats import hypergeom

    def every_window(labels: list[int], total: int, target: float = 0.95) -> float:
        seen = np.array(labels)
        found, k = int(seen.sum()), np.arange(1, len(seen) + 1)
        r = np.cumsum(seen[::-1])
        urn_includes = math.floor(found / target) + 1 - (found - r)
        urn = total - len(seen) + k
        p = hypergeom.cdf(r, urn, np.minimum(urn_includes, urn), k)
        return float(np.where(urn_includes > urn, 0.0, p).min())

    rng = random.Random(5)
    for _ in range(100):
        n = rng.randint(1, 200)
        labels = [int(rng.random() < rng.random() * 0.5) for _ in range(n)]
        if sum(labels):
            total = n + rng.randint(0, 200)
            assert abs(stopping(labels, total).p_value - every_window(labels, total)) < 1e-9
