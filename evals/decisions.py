"""Decision methods by simulation on the real labels (issues 15 and 27; DECISIONS.md §4).

    uv run --frozen python -m evals.decisions [--datasets ...] [--seeds 3] [--samples 200]
        [--asreview] [--skip-calibration] [--first-seed 0] [--only-ours]

No model is called. Printed as Markdown:

1. Prioritisation, per dataset and seed: from one random include + one random exclude (the
   same two for every method), a method ranks, the top record's label is revealed, repeat
   (retrained after every label, as a session answers) until every include is found. WSS@95,
   WSS@100 and the records screened to reach them, for: ours (`decisions.ranking.Ranker`, what
   a session runs), our implementation of ASReview's ELAS u4 recipe (the same code without the
   presumed excludes and the second view), and ELAS u4 as shipped by ASReview LAB 3.0.8
   (`--asreview`, the eval dependency group). The median time of one answer of ours.
2. Stopping, in the same runs of ours: after every label both rules are asked (target 95%,
   confidence 95%): the hypergeometric test and the consecutive-excludes heuristic. Per
   dataset: the share of runs whose recall at the stop met the target, the records screened at
   the stop, the recall reached and the work saved. After the last include the rest of the
   records are all excludes, in whatever order; the runs continue on them. Each rule also with
   the hand-over a session asks for: when the rule fires, the unscreened records that have no
   abstract are screened as well (counted in the records screened).
3. Calibration: scores with a controlled relation to the labels: 5-fold cross-validated
   TF-IDF + logistic-regression probabilities (each record scored by a model that never saw
   it). For each sample size, `--samples` simple random samples are labelled and calibrated
   (target 95%, confidence 95%); coverage = the share of supported thresholds whose true recall
   on the whole dataset met the target; workload reduction = records excluded.

Dev sets: cdss_ro_2024, nagtegaal_2019, bannach_brown_2019. Held out (reported untouched):
appenzeller_herzog_2019_wilson, smid_2020.
"""

from __future__ import annotations

import argparse
import csv
import random
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import cross_val_predict

from crystallise.decisions.calibrate import ScoredRecord, calibrate
from crystallise.decisions.ranking import Features, Ranker, svm_scores
from crystallise.decisions.stopping import consecutive_excludes, stopping

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "datasets" / "screening"
DEV = ["cdss_ro_2024", "nagtegaal_2019", "bannach_brown_2019"]
HELD_OUT = ["appenzeller_herzog_2019_wilson", "smid_2020"]
TARGET = CONFIDENCE = 0.95
Rank = Callable[[list[int], list[int]], np.ndarray]


def load(name: str) -> list[dict[str, Any]]:
    with (DATA / f"{name}.csv").open(encoding="utf-8", newline="") as fh:
        return [
            {
                "id": r["id"],
                "title": r["title"],
                "abstract": r["abstract"],
                "text": f"{r['title']} {r['abstract']}",
                "label": int(r["label"]),
            }
            for r in csv.DictReader(fh)
        ]


def priors(truth: list[int], seed: int) -> tuple[int, int]:
    """The seed's one include and one exclude (the same for every method compared)."""
    rng = random.Random(seed)
    include = rng.choice([i for i, y in enumerate(truth) if y])
    return include, rng.choice([i for i, y in enumerate(truth) if not y])


def _recall_points(truth: list[int], order: list[int]) -> dict[str, Any]:
    total, includes = len(truth), sum(truth)
    found = np.cumsum([truth[i] for i in order])
    at95 = int(np.searchsorted(found, int(np.ceil(0.95 * includes)))) + 1
    at100 = int(np.searchsorted(found, includes)) + 1
    return {
        "at95": at95,
        "at100": at100,
        "wss95": (total - at95) / total - 0.05,
        "wss100": (total - at100) / total,
    }


def asreview_run(rows: list[dict[str, Any]], seed: int) -> dict[str, Any]:
    """ASReview LAB's default model (ELAS u4), unmodified, from the same two priors."""
    import pandas as pd
    from asreview.learner import ActiveLearningCycle
    from asreview.models.models import get_ai_config
    from asreview.models.queriers import TopDown
    from asreview.models.stoppers import IsFittable
    from asreview.simulation.simulate import Simulate

    truth = [r["label"] for r in rows]
    frame = pd.DataFrame(
        {"title": [r["title"] for r in rows], "abstract": [r["abstract"] for r in rows]}
    )
    cycles = [
        ActiveLearningCycle(querier=TopDown(), stopper=IsFittable()),
        ActiveLearningCycle.from_meta(get_ai_config()["value"]),
    ]
    sim = Simulate(frame, np.array(truth), cycles, print_progress=False)
    sim.label(list(priors(truth, seed)))
    sim.review()
    order = [int(i) for i in sim._results["record_id"]]
    return _recall_points(truth, order)


def ours(rows: list[dict[str, Any]]) -> Rank:
    return Ranker(Features.build([(r["title"], r["abstract"]) for r in rows])).rank


def elas_u4_recipe(rows: list[dict[str, Any]]) -> Rank:
    """ELAS u4 as published: bigram TF-IDF, balanced linear SVM, no presumed excludes."""
    # the recipe as published: title and abstract as one text (no title weighting)
    features = Features.build([("", r["text"]) for r in rows], names=("bigram",)).views[0]
    none = np.array([], dtype=np.int64)

    def rank(order: list[int], labels: list[int]) -> np.ndarray:
        idx = np.asarray(order, dtype=np.int64)
        margins = svm_scores(features, idx, np.asarray(labels, dtype=np.int64), none)
        margins[idx] = -np.inf
        return margins

    return rank


def simulate(rows: list[dict[str, Any]], seed: int, method: Rank) -> dict[str, Any]:
    """One screening run, retrained after every label, until every include is found."""
    truth = [r["label"] for r in rows]
    includes = sum(truth)
    order = list(priors(truth, seed))
    times = []
    while sum(truth[i] for i in order) < includes:
        t0 = time.perf_counter()
        scores = method(order, [truth[i] for i in order])
        times.append(time.perf_counter() - t0)
        order.append(int(np.argmax(scores)))
    return {**_recall_points(truth, order), "order": order, "answer_s": statistics.median(times)}


def stops(truth: list[int], order: list[int], no_abstract: set[int]) -> dict[str, dict[str, Any]]:
    """Where each stopping rule stops on this run's order (then all excludes to the end), and
    with the hand-over: when the rule fires, the unscreened records without an abstract are
    screened too (the ranking cannot judge them from a title alone)."""
    total, includes = len(truth), sum(truth)
    labels = [truth[i] for i in order] + [0] * (total - len(order))
    rules: dict[str, Callable[[list[int]], bool]] = {
        "hypergeometric": lambda seen: stopping(seen, total, TARGET, CONFIDENCE).safe_to_stop,
        "heuristic": lambda seen: consecutive_excludes(seen, total).safe_to_stop,
    }
    out = {}
    for name, rule in rules.items():
        stop = next((n for n in range(1, total + 1) if rule(labels[:n])), total)
        handed = no_abstract - set(order[:stop])
        for variant, screened, found in (
            (name, stop, sum(labels[:stop])),
            (
                f"{name} + hand-over",
                stop + len(handed),
                sum(labels[:stop]) + sum(truth[i] for i in handed),
            ),
        ):
            recall = found / includes
            out[variant] = {"stop": screened, "recall": recall, "met": recall >= TARGET,
                            "saved": 1 - screened / total}  # fmt: skip
    return out


def cv_scores(rows: list[dict[str, Any]]) -> np.ndarray:
    features = TfidfVectorizer(sublinear_tf=True, stop_words="english").fit_transform(
        [r["text"] for r in rows]
    )
    labels = np.array([r["label"] for r in rows])
    model = LogisticRegression(class_weight="balanced", C=10.0, max_iter=1000)
    probs = cross_val_predict(model, features, labels, cv=5, method="predict_proba")
    return np.asarray(probs[:, 1])


def calibration(
    rows: list[dict[str, Any]], scores: np.ndarray, share: float, samples: int
) -> dict[str, Any]:
    truth = np.array([r["label"] for r in rows])
    supported = met = 0
    reductions = []
    for seed in range(samples):
        rng = random.Random(seed)
        sample = set(rng.sample(range(len(rows)), int(share * len(rows))))
        records = [
            ScoredRecord(str(i), [float(s)], int(truth[i]) if i in sample else None)
            for i, s in enumerate(scores)
        ]
        result = calibrate(records, TARGET, CONFIDENCE, ("mean",))
        if result.status != "ok" or result.threshold is None:
            continue
        supported += 1
        recall = float((scores[truth == 1] >= result.threshold).mean())
        met += recall >= TARGET
        reductions.append(result.workload_reduction)
    return {
        "supported": supported / samples,
        "coverage": met / supported if supported else None,
        "reduction": statistics.median(reductions) if reductions else None,
    }


def prioritisation(
    names: list[str], seeds: range, with_asreview: bool, only_ours: bool = False
) -> None:
    print("| dataset | set | seed | method | WSS@95 | WSS@100 | screened @95% | @100% "
          "| median answer s |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|")
    summary: list[str] = []
    for name in names:
        rows = load(name)
        truth = [r["label"] for r in rows]
        methods: dict[str, Callable[[int], dict[str, Any]]] = {
            "ours": lambda seed, rows=rows: simulate(rows, seed, ours(rows)),
            "ELAS u4 recipe (ours)": lambda seed, rows=rows: simulate(
                rows, seed, elas_u4_recipe(rows)
            ),
        }
        if only_ours:
            del methods["ELAS u4 recipe (ours)"]
        if with_asreview:
            methods["ASReview ELAS u4"] = lambda seed, rows=rows: asreview_run(rows, seed)
        runs: dict[str, list[dict[str, Any]]] = {m: [] for m in methods}
        for seed in seeds:
            for method, run in methods.items():
                r = run(seed)
                runs[method].append(r)
                answer = f"{r['answer_s']:.3f}" if "answer_s" in r else "n/a"
                print(
                    f"| {name} | {'dev' if name in DEV else 'held out'} | {seed} | {method} "
                    f"| {r['wss95']:.3f} | {r['wss100']:.3f} | {r['at95']} | {r['at100']} "
                    f"| {answer} |",
                    flush=True,
                )
        for method, found in runs.items():
            summary.append(
                f"| {name} | {method} | {statistics.mean(r['wss95'] for r in found):.3f} "
                f"| {statistics.mean(r['wss100'] for r in found):.3f} |"
            )
        no_abstract = {i for i, r in enumerate(rows) if not r["abstract"].strip()}
        stopped_runs = [stops(truth, r["order"], no_abstract) for r in runs["ours"]]
        for rule in stopped_runs[0]:
            stopped = [run[rule] for run in stopped_runs]
            summary.append(
                f"| {name} | stop: {rule} | runs meeting 95%: "
                f"{sum(x['met'] for x in stopped)}/{len(stopped)} | screened at stop (median) "
                f"{statistics.median(x['stop'] for x in stopped):.0f}, recall (min) "
                f"{min(x['recall'] for x in stopped):.3f}, work saved (mean) "
                f"{statistics.mean(x['saved'] for x in stopped):.1%} |"
            )
    print()
    print("| dataset | method | mean WSS@95 | mean WSS@100 |")
    print("|---|---|---|---|")
    print("\n".join(summary))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--datasets", nargs="*", default=DEV + HELD_OUT)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument(
        "--only-ours", action="store_true", help="ours alone (more seeds for the stopping rules)"
    )
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument(
        "--asreview", action="store_true", help="also run ASReview's default model (eval group)"
    )
    parser.add_argument("--skip-calibration", action="store_true")
    args = parser.parse_args()
    seeds = range(args.first_seed, args.first_seed + args.seeds)
    prioritisation(args.datasets, seeds, args.asreview, args.only_ours)
    if args.skip_calibration:
        return
    print()
    print(
        "| dataset | sample share | runs with a supported threshold | coverage of the bound "
        "| median workload reduction |"
    )
    print("|---|---|---|---|---|")
    for name in args.datasets:
        rows = load(name)
        scores = cv_scores(rows)
        for share in (0.1, 0.3, 0.5):
            c = calibration(rows, scores, share, args.samples)
            coverage = f"{c['coverage']:.3f}" if c["coverage"] is not None else "n/a"
            reduction = f"{c['reduction']:.1%}" if c["reduction"] is not None else "n/a"
            print(
                f"| {name} | {share:.0%} | {c['supported']:.0%} | {coverage} | {reduction} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
