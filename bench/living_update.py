"""Benchmark (issue 26): cost and wall time of a 10,000-paper screening job, then of an update
of the same search with 5% new records, on defaults, against the fake provider.

    uv run --frozen python -m bench.living_update [--papers 10000] [--new-share 0.05]

The library path the API takes (``submit_screening``, then ``submit_update`` as
``POST /v1/screening/jobs/{id}/update`` calls it), run in this process with the in-process
runner; the fake provider in its own process answers with realistic lengths. Papers: the 2,008
real nagtegaal_2019 titles and abstracts, then synthetic ones. Calls are counted by the fake
per response schema (labelling, reasoning, themes, assignment).
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Callable
from typing import Any

from bench.fakeproc import bench_settings, fake_server
from bench.screening_throughput import CRITERIA, load_papers
from crystallise.services import Services

THEMES = ("ThemesOutput", "AssignmentOutput")


async def both_jobs(
    url: str, papers: int, new: int, between: Callable[[], None]
) -> list[dict[str, Any]]:
    from crystallise.jobs.start import start_services
    from crystallise.jobs.submit import Submission, submit_screening
    from crystallise.jobs.update import submit_update
    from crystallise.screening.schemas import Paper, ScreeningRequest

    settings = bench_settings(url, max_papers_per_job=papers + new)
    services = await start_services(settings)
    everything = load_papers(papers + new)
    body = ScreeningRequest(papers=everything[:papers], criteria=CRITERIA)  # type: ignore[arg-type]
    out = []
    t0 = time.perf_counter()
    job_id = (await submit_screening(services, body, Submission(dispatch=False))).id
    services.runner.submit("screening", job_id)
    await services.runner.wait(job_id)
    out.append(_row(services, job_id, time.perf_counter() - t0))
    between()
    t0 = time.perf_counter()
    added = [Paper.model_validate(p) for p in everything[papers:]]
    row, _ = await submit_update(services, job_id, added, Submission(dispatch=False))
    services.runner.submit("screening", row.id)
    await services.runner.wait(row.id)
    out.append(_row(services, row.id, time.perf_counter() - t0))
    await services.aclose()
    return out


def _row(services: Services, job_id: str, wall: float) -> dict[str, Any]:
    row = services.jobs.get_job("screening", job_id)
    assert row is not None and row.status == "completed", (row.status, row.error) if row else None
    return {
        "usage": row.usage or {},
        "papers": row.item_count,
        "wall_s": wall,
        "cost": row.estimated_cost_usd or 0.0,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--papers", type=int, default=10_000)
    parser.add_argument("--new-share", type=float, default=0.05)
    args = parser.parse_args()
    new = int(args.papers * args.new_share)
    with fake_server() as fake:
        fake.reset(reasoning_tokens=96, reasoning_words=[60, 90])
        before: dict[str, int] = {}

        def between() -> None:
            before.update({k: v[0] for k, v in fake.stats()["by_kind"].items()})

        rows = asyncio.run(both_jobs(fake.url, args.papers, new, between))
        after = {k: v[0] for k, v in fake.stats()["by_kind"].items()}
    calls = [before, {k: v - before.get(k, 0) for k, v in after.items()}]
    print(f"papers={args.papers} new={new} (defaults: model, repetitions, scoring)")
    print("| job | papers | screened | reused | screening calls | theme calls | cost | wall |")
    print("|---|---|---|---|---|---|---|---|")
    for name, job, count in zip(("first", "update"), rows, calls, strict=True):
        usage = job["usage"]
        screening = sum(v for k, v in count.items() if k not in THEMES)
        themes = sum(v for k, v in count.items() if k in THEMES)
        print(
            f"| {name} | {job['papers']} | {usage.get('screened_count', '?')} "
            f"| {usage.get('reused_count', 0)} | {screening} | {themes} | ${job['cost']:.4f} "
            f"| {job['wall_s']:.1f} s |"
        )


if __name__ == "__main__":
    main()
