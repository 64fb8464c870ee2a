"""Speed of the decision methods on 20,000 records (issue 15 goals: ranking ≤ 3 s,
calibrate and stopping ≤ 200 ms, on 2 cores).

    uv run --frozen python -m bench.decisions_speed [--records 20000] [--runs 5]

Real titles and abstracts (nagtegaal_2019, repeated with distinct ids to reach the count),
5 per-record scores, 1,000 labels (a 5% random sample) for ranking and calibration, and a
screened sequence of half the records for stopping. Median of ``--runs`` timings each,
calling the library functions the endpoints call.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from collections.abc import Callable
from typing import Any

from bench.screening_throughput import load_papers
from crystallise.decisions.calibrate import ScoredRecord, calibrate
from crystallise.decisions.prioritize import RankRecord, prioritize
from crystallise.decisions.stopping import stopping


def _median_s(fn: Callable[[], Any], runs: int) -> float:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    rng = random.Random(0)
    base = load_papers(2000)
    papers = [base[i % len(base)] for i in range(args.records)]
    labels = [int(rng.random() < 0.05) for _ in papers]
    sample = set(rng.sample(range(len(papers)), 1000))
    ranked = [
        RankRecord(f"r{i}", f"{p['title']} {p['abstract']}", labels[i] if i in sample else None)
        for i, p in enumerate(papers)
    ]
    scored = [
        ScoredRecord(
            f"r{i}",
            [float(min(5, max(1, round(rng.gauss(4 if y else 2, 1))))) for _ in range(5)],
            y if i in sample else None,
        )
        for i, y in enumerate(labels)
    ]
    order = sorted(labels, key=lambda y: -(rng.random() + y))[: args.records // 2]
    rows = {
        "prioritize": _median_s(lambda: prioritize(ranked), args.runs),
        "calibrate (mean, max)": _median_s(lambda: calibrate(scored), args.runs),
        "stopping": _median_s(lambda: stopping(order, args.records), args.runs),
    }
    print(f"records={args.records} runs={args.runs}")
    print("| method | median s |")
    print("|---|---|")
    for name, seconds in rows.items():
        print(f"| {name} | {seconds:.3f} |")


if __name__ == "__main__":
    main()
