"""Decision methods by simulation on the real labels (issue 15; DECISIONS.md §4).

    uv run --frozen python -m evals.decisions [--datasets ...] [--seeds 5] [--samples 200]

No model is called. Three tables, printed as Markdown:

1. Prioritisation: from one random include + one random exclude, the library's ranking
   (`decisions.prioritize`, TF-IDF + balanced logistic regression) picks the next 25 records,
   their labels are revealed, repeat. Records screened to reach 95% and 100% recall, WSS@95.
2. Stopping: in the same runs, `decisions.stopping` (target 95%, confidence 95%) is asked after
   every batch; the share of runs whose recall at the stop met the target, and the work saved.
3. Calibration: scores with a controlled relation to the labels: 5-fold cross-validated
   TF-IDF + logistic-regression probabilities (each record scored by a model that never saw
   it). For each sample size, `--samples` simple random samples are labelled and calibrated
   (target 95%, confidence 95%); coverage = the share of supported thresholds whose true recall
   on the whole dataset met the target; workload reduction = records excluded.

Dev sets: cdss_ro_2024, nagtegaal_2019. Held out (reported untouched): the others.
"""

from __future__ import annotations

import argparse
import csv
import random
import statistics
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import cross_val_predict

from crystallise.decisions.calibrate import ScoredRecord, calibrate
from crystallise.decisions.prioritize import RankRecord, prioritize
from crystallise.decisions.stopping import stopping

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "datasets" / "screening"
DEV = ["cdss_ro_2024", "nagtegaal_2019"]
HELD_OUT = ["appenzeller_herzog_2019_wilson", "smid_2020", "bannach_brown_2019"]
BATCH = 25
TARGET = CONFIDENCE = 0.95


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
    return {"at95": at95, "at100": at100, "wss95": (total - at95) / total - 0.05}


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


def simulate(rows: list[dict[str, Any]], seed: int) -> dict[str, Any]:
    """One prioritised screening run with the stopping rule asked after every batch."""
    truth = [r["label"] for r in rows]
    total, includes = len(rows), sum(truth)
    include, exclude = priors(truth, seed)
    known: dict[int, int] = {include: 1, exclude: 0}
    order = list(known)
    stop_at: int | None = None
    while len(known) < total and sum(known.values()) < includes:
        records = [RankRecord(str(i), r["text"], known.get(i)) for i, r in enumerate(rows)]
        for rid, _ in prioritize(records).ranking[:BATCH]:
            known[int(rid)] = truth[int(rid)]
            order.append(int(rid))
        if stop_at is None and stopping([truth[i] for i in order], total).safe_to_stop:
            stop_at = len(order)
    found = np.cumsum([truth[i] for i in order])
    stop = stop_at or total  # never stopped early: everything gets screened
    recall_at_stop = (found[stop - 1] if stop <= len(found) else includes) / includes
    return {
        **_recall_points(truth, order),
        "stop": stop,
        "met": recall_at_stop >= TARGET,
        "saved": 1 - stop / total,
    }


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


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--datasets", nargs="*", default=DEV + HELD_OUT)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument(
        "--asreview", action="store_true", help="also run ASReview's default model (eval group)"
    )
    args = parser.parse_args()
    print(
        "| dataset | set | records | includes | screened @95% (median) | @100% | WSS@95 "
        "| ASReview ELAS u4: WSS@95 (screened @95%) | stop: runs meeting 95% "
        "| work saved at stop |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name in args.datasets:
        rows = load(name)
        runs = [simulate(rows, seed) for seed in range(args.seeds)]
        theirs = "not run"
        if args.asreview:
            asr = [asreview_run(rows, seed) for seed in range(args.seeds)]
            theirs = (
                f"{statistics.mean(r['wss95'] for r in asr):.3f} "
                f"({statistics.median(r['at95'] for r in asr):.0f})"
            )
        print(
            f"| {name} | {'dev' if name in DEV else 'held out'} | {len(rows)} | "
            f"{sum(r['label'] for r in rows)} | {statistics.median(r['at95'] for r in runs):.0f} | "
            f"{statistics.median(r['at100'] for r in runs):.0f} | "
            f"{statistics.mean(r['wss95'] for r in runs):.3f} | {theirs} | "
            f"{sum(r['met'] for r in runs)}/{len(runs)} | "
            f"{statistics.mean(r['saved'] for r in runs):.1%} |",
            flush=True,
        )
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
