"""The session's ranking model and the stopping heuristic, by simulation on a real labelled
review (cdss_ro_2024, a dev set, in tests/fixtures): the claims in README and evals/RESULTS.md
that a test can afford to check."""

from __future__ import annotations

import csv
import gzip
import statistics
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from crystallise.decisions.ranking import Features, Ranker
from crystallise.decisions.stopping import consecutive_excludes
from evals.decisions import elas_u4_recipe, ours, simulate, stops

FIXTURE = Path(__file__).parents[1] / "fixtures/datasets/screening/cdss_ro_2024_full.csv.gz"


@pytest.fixture(scope="module")
def cdss() -> list[dict[str, Any]]:
    with gzip.open(FIXTURE, "rt", encoding="utf-8", newline="") as fh:
        return [
            {**r, "text": f"{r['title']} {r['abstract']}", "label": int(r["label"])}
            for r in csv.DictReader(fh)
        ]


@pytest.fixture(scope="module")
def runs(cdss: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    return {
        "ours": [simulate(cdss, seed, ours(cdss)) for seed in range(3)],
        "recipe": [simulate(cdss, seed, elas_u4_recipe(cdss)) for seed in range(3)],
    }


def test_the_model_finds_includes_earlier_than_elas_u4(runs: dict[str, Any]) -> None:
    ours_wss = statistics.mean(r["wss95"] for r in runs["ours"])
    recipe_wss = statistics.mean(r["wss95"] for r in runs["recipe"])
    # ASReview LAB 3.0.8's ELAS u4 gives 0.645, 0.643, 0.639 on these seeds; the recipe the same
    assert recipe_wss == pytest.approx(0.642, abs=0.005)
    assert ours_wss >= recipe_wss + 0.005, (ours_wss, recipe_wss)
    assert statistics.mean(r["wss100"] for r in runs["ours"]) > statistics.mean(
        r["wss100"] for r in runs["recipe"]
    )


def test_the_heuristic_stops_early_and_meets_the_target(
    cdss: list[dict[str, Any]], runs: dict[str, Any]
) -> None:
    truth = [r["label"] for r in cdss]
    no_abstract = {i for i, r in enumerate(cdss) if not r["abstract"].strip()}
    for run in runs["ours"]:
        found = stops(truth, run["order"], no_abstract)
        assert found["heuristic"]["met"] and found["heuristic"]["saved"] >= 0.30, found
        assert found["hypergeometric"]["met"]
        assert found["heuristic"]["stop"] < found["hypergeometric"]["stop"]


def test_the_hand_over_screens_the_records_without_an_abstract_after_the_stop() -> None:
    # 300 records: includes 0-9 screened first, then excludes; include 299 has no abstract and
    # sits last, where a ranking puts a title it cannot judge
    truth = [1] * 10 + [0] * 289 + [1]
    found = stops(truth, list(range(300)), {150, 299})
    plain, handed = found["heuristic"], found["heuristic + hand-over"]
    assert plain["stop"] == 60 and plain["recall"] == 10 / 11 and not plain["met"]
    assert handed["stop"] == 62 and handed["recall"] == 1.0 and handed["met"]


def test_the_heuristic_needs_a_long_enough_run_after_an_include() -> None:
    assert consecutive_excludes([0] * 400, 1000).safe_to_stop is False  # no include yet
    assert consecutive_excludes([1] + [0] * 99, 1000).safe_to_stop is False  # 99 < 100
    answer = consecutive_excludes([1] + [0] * 100, 1000)
    assert answer.safe_to_stop and answer.run_needed == 100
    assert consecutive_excludes([1] + [0] * 50, 300).run_needed == 50  # at least 50


def test_ranking_is_deterministic_and_ignores_labelled_records(cdss: list[dict[str, Any]]) -> None:
    features = Features.build([(r["title"], r["abstract"]) for r in cdss[:200]])
    order, labels = [0, 1, 2, 3], [1, 0, 0, 1]
    first, second = Ranker(features).rank(order, labels), Ranker(features).rank(order, labels)
    assert np.array_equal(first, second)
    assert np.isneginf(first[order]).all() and np.isfinite(np.delete(first, order)).all()


def test_the_view_that_ranked_recent_labels_better_ranks_next() -> None:
    ranker = Ranker(Features.build([("alpha", "beta"), ("gamma", "delta"), ("epsilon", "zeta")]))
    # includes sat high in the unigram view and low in the bigram view; excludes the reverse
    for i in range(30):
        ranker.history.append((i % 2, 0.2 if i % 2 else 0.8, 0.9 if i % 2 else 0.1))
    assert ranker._choose() == 1
    ranker.history.clear()
    for i in range(30):
        ranker.history.append((i % 2, 0.9 if i % 2 else 0.1, 0.2 if i % 2 else 0.8))
    assert ranker._choose() == 0
