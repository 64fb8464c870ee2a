"""Agreement between the AI's screening decisions and human reviewers (RAISE 2025 asks teams to
report it): pairwise Cohen's kappa with a 95% CI and Gwet's AC1, and the AI against the
reviewers' consensus (sensitivity, specificity with Wilson CIs, reviewer conflicts).

Formulas (two categories, include = 1 / exclude = 0; n papers both raters decided):
- observed agreement p_o = share of papers with the same label;
- Cohen's kappa = (p_o - p_e) / (1 - p_e), p_e = p_a p_b + (1 - p_a)(1 - p_b) (p_x: rater x's
  include share), computed by scikit-learn's ``cohen_kappa_score``; its 95% CI is
  kappa ± 1.96 SE with Cohen's (1960) large-sample SE = sqrt(p_o (1 - p_o) / (n (1 - p_e)^2)),
  clipped to [-1, 1]. Kappa is undefined (null) when p_e = 1 (both raters used one label only).
- Gwet's AC1 = (p_o - p_e*) / (1 - p_e*), p_e* = 2 q (1 - q), q = (p_a + p_b) / 2 (Gwet 2008);
  it stays meaningful at low prevalence, where kappa collapses (the "kappa paradox").
- sensitivity / specificity of the AI against the consensus with Wilson score 95% intervals
  (statsmodels ``proportion_confint(method="wilson")``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from itertools import combinations
from typing import Any

Labels = dict[str, int]
Z95 = 1.959963984540054


@dataclass
class PairAgreement:
    raters: tuple[str, str]
    n: int
    percent_agreement: float | None
    kappa: float | None
    kappa_ci: tuple[float, float] | None
    ac1: float | None


@dataclass
class Agreement:
    pairs: list[PairAgreement]
    consensus_n: int
    conflicts: list[str]
    sensitivity: float | None
    sensitivity_ci: tuple[float, float] | None
    specificity: float | None
    specificity_ci: tuple[float, float] | None
    disagreements: list[tuple[str, int, int]] = field(default_factory=list)  # id, ai, consensus


def pair_agreement(a_name: str, a: Labels, b_name: str, b: Labels) -> PairAgreement:
    common = sorted(set(a) & set(b))
    n = len(common)
    if n == 0:
        return PairAgreement((a_name, b_name), 0, None, None, None, None)
    x = [a[i] for i in common]
    y = [b[i] for i in common]
    p_o = sum(u == v for u, v in zip(x, y, strict=True)) / n
    p_a, p_b = sum(x) / n, sum(y) / n
    p_e = p_a * p_b + (1 - p_a) * (1 - p_b)
    kappa: float | None = None
    ci: tuple[float, float] | None = None
    if p_e < 1:
        from sklearn.metrics import cohen_kappa_score

        kappa = float(cohen_kappa_score(x, y, labels=[0, 1]))
        se = math.sqrt(p_o * (1 - p_o) / (n * (1 - p_e) ** 2))
        ci = (max(-1.0, kappa - Z95 * se), min(1.0, kappa + Z95 * se))
    q = (p_a + p_b) / 2
    p_e_star = 2 * q * (1 - q)
    ac1 = (p_o - p_e_star) / (1 - p_e_star)  # p_e* <= 0.5, never 1
    return PairAgreement((a_name, b_name), n, p_o, kappa, ci, ac1)


def wilson(successes: int, total: int) -> tuple[float | None, tuple[float, float] | None]:
    if total == 0:
        return None, None
    from statsmodels.stats.proportion import proportion_confint

    low, high = proportion_confint(successes, total, alpha=0.05, method="wilson")
    return successes / total, (float(low), float(high))


def consensus(reviewers: dict[str, Labels]) -> tuple[Labels, list[str]]:
    """Papers every reviewer who decided them agrees on, and the papers they disagree on."""
    votes: dict[str, set[int]] = {}
    for labels in reviewers.values():
        for paper, label in labels.items():
            votes.setdefault(paper, set()).add(label)
    agreed = {p: next(iter(v)) for p, v in votes.items() if len(v) == 1}
    return agreed, sorted(p for p, v in votes.items() if len(v) > 1)


def agreement(ai: Labels, reviewers: dict[str, Labels]) -> Agreement:
    raters = {"AI": ai, **reviewers}
    pairs = [pair_agreement(a, raters[a], b, raters[b]) for a, b in combinations(raters, 2)]
    agreed, conflicts = consensus(reviewers)
    both = [p for p in agreed if p in ai]
    includes = [p for p in both if agreed[p] == 1]
    excludes = [p for p in both if agreed[p] == 0]
    sensitivity, sensitivity_ci = wilson(sum(ai[p] for p in includes), len(includes))
    specificity, specificity_ci = wilson(sum(1 - ai[p] for p in excludes), len(excludes))
    disagreements = [(p, ai[p], agreed[p]) for p in both if ai[p] != agreed[p]]
    return Agreement(
        pairs, len(both), conflicts, sensitivity, sensitivity_ci, specificity, specificity_ci,
        disagreements,
    )  # fmt: skip


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}%"


def _ci(ci: tuple[float, float] | None, percent: bool = False) -> str:
    if ci is None:
        return ""
    if percent:
        return f" (95% CI {100 * ci[0]:.1f}-{100 * ci[1]:.1f}%)"
    return f" (95% CI {ci[0]:.2f} to {ci[1]:.2f})"


def report(result: Agreement, threshold: float, model: str, reviewers: list[str]) -> str:
    """A methods/results paragraph built from the numbers (no model writes it)."""
    parts = [
        f"Agreement between AI screening ({model}; include at a final score of at least "
        f"{threshold:g}) and {len(reviewers)} human reviewer(s) ({', '.join(reviewers)})."
    ]
    for pair in result.pairs:
        if pair.n == 0:
            parts.append(f"{pair.raters[0]} and {pair.raters[1]} decided no paper in common.")
            continue
        kappa = "undefined (one label only)" if pair.kappa is None else f"{pair.kappa:.2f}"
        parts.append(
            f"{pair.raters[0]} vs {pair.raters[1]}: {pair.n} papers, {_pct(pair.percent_agreement)} "
            f"agreement, Cohen's kappa {kappa}{_ci(pair.kappa_ci)}, Gwet's AC1 {pair.ac1:.2f}."
        )
    parts.append(
        f"Against the reviewers' consensus ({result.consensus_n} papers; "
        f"{len(result.conflicts)} with conflicting reviewer decisions left out), the AI's "
        f"sensitivity was {_pct(result.sensitivity)}{_ci(result.sensitivity_ci, True)} and its "
        f"specificity {_pct(result.specificity)}{_ci(result.specificity_ci, True)}; it disagreed "
        f"with the consensus on {len(result.disagreements)} papers."
    )
    return " ".join(parts)


def as_dict(pair: PairAgreement) -> dict[str, Any]:
    return {
        "raters": list(pair.raters),
        "n": pair.n,
        "percent_agreement": pair.percent_agreement,
        "kappa": pair.kappa,
        "kappa_ci": list(pair.kappa_ci) if pair.kappa_ci else None,
        "ac1": pair.ac1,
    }
