"""Speed of the decision methods on 20,000 records (issue 15 goals: ranking ≤ 3 s,
calibrate and stopping ≤ 200 ms; issue 27: a session's answer to one label ≤ 100 ms; on 2
cores).

    uv run --frozen python -m bench.decisions_speed [--records 20000] [--runs 5]

Real titles and abstracts (nagtegaal_2019, repeated with distinct ids to reach the count),
5 per-record scores, 1,000 labels (a 5% random sample) for ranking and calibration, and a
screened sequence of half the records for stopping. Median of ``--runs`` timings each,
calling the library functions the endpoints call. The session: built once (timed once), then
``--labels`` labels posted one at a time through HTTP (the app in-process, SQLite file), after
200 and after 1,000 labels already given; median per label.
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
    parser.add_argument("--labels", type=int, default=20)
    args = parser.parse_args()
    rng = random.Random(0)
    base = load_papers(2000)
    papers = [base[i % len(base)] for i in range(args.records)]
    labels = [int(rng.random() < 0.05) for _ in papers]
    sample = set(rng.sample(range(len(papers)), 1000))
    ranked = [
        RankRecord(f"r{i}", p["title"], p["abstract"], labels[i] if i in sample else None)
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
    session = _session_figures(papers, labels, args.labels)
    rows = {
        "prioritize": _median_s(lambda: prioritize(ranked), args.runs),
        "calibrate (mean, max)": _median_s(lambda: calibrate(scored), args.runs),
        "stopping": _median_s(lambda: stopping(order, args.records), args.runs),
        **session,
    }
    print(f"records={args.records} runs={args.runs}")
    print("| method | median s |")
    print("|---|---|")
    for name, seconds in rows.items():
        print(f"| {name} | {seconds:.3f} |")


def _session_figures(papers: list[Any], labels: list[int], count: int) -> dict[str, float]:
    """Create a session over HTTP, then time single-label answers at two depths."""
    import tempfile
    from pathlib import Path

    from fastapi.testclient import TestClient

    from crystallise.api.app import create_app
    from crystallise.config.settings import Settings

    url = "/v1/screening/prioritize/sessions"
    records = [
        {"id": f"r{i}", "title": p["title"], "abstract": p["abstract"]}
        for i, p in enumerate(papers)
    ]
    records[0]["label"], records[1]["label"] = 1, 0
    labels[0], labels[1] = 1, 0
    figures: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(
            database_url=f"sqlite:///{Path(tmp) / 'bench.db'}", max_papers_per_job=len(papers)
        )
        with TestClient(create_app(settings)) as client:
            t0 = time.perf_counter()
            body = client.post(url, json={"records": records, "next_count": 10}).json()
            figures["session: create (features built once)"] = time.perf_counter() - t0
            session, given = body["session_id"], 2
            for depth in (200, 1000):
                while given < depth:  # bring the session to this many labels, 100 at a time
                    batch = [
                        {"id": f"r{i}", "label": labels[i]}
                        for i in range(given, min(depth, given + 100))
                    ]
                    client.post(f"{url}/{session}/labels", json={"labels": batch})
                    given += len(batch)
                times = []
                for _ in range(count):
                    one = [{"id": f"r{given}", "label": labels[given]}]
                    t0 = time.perf_counter()
                    r = client.post(f"{url}/{session}/labels", json={"labels": one})
                    times.append(time.perf_counter() - t0)
                    assert r.status_code == 200, r.text
                    given += 1
                figures[f"session: one label, HTTP (after {depth} labels)"] = statistics.median(
                    times
                )
    return figures


if __name__ == "__main__":
    main()
