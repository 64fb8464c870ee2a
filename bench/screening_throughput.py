"""Benchmark: a 2,000-paper × 5-repetition screening job against a rate-limited fake provider.

    uv run --frozen python -m bench.screening_throughput [--papers 2000] [--repetitions 5] \
        [--latency 1.0] [--rpm 3000] [--model gpt-4.1-mini]

Papers are real records (../shared/datasets/screening/nagtegaal_2019.csv, falling back to
synthetic text). Reports wall time against the provider-bound minimum (calls ÷ RPM), calls and
tokens per paper against the seed design (repetitions + 1 calls per paper at concurrency 10),
and peak memory (RSS) of the process running the pipeline.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import pathlib
import resource
import tempfile
import time
from typing import Any

from bench.fakeproc import fake_server
from crystallise.config.settings import Settings

DATASET = (
    pathlib.Path(__file__).resolve().parents[2]
    / "shared"
    / "datasets"
    / "screening"
    / "nagtegaal_2019.csv"
)
CRITERIA = [
    {
        "name": "Intervention",
        "type": "include",
        "value": "A nudge: reminders, defaults, feedback, alerts or social reference points",
    },
    {
        "name": "Population",
        "type": "include",
        "value": "Healthcare professionals (physicians, nurses, pharmacists)",
    },
    {
        "name": "Outcome",
        "type": "include",
        "value": "Behaviour towards evidence-based medicine (guideline adherence, prescribing)",
    },
    {
        "name": "Design",
        "type": "include",
        "value": "Empirical study with a comparison (trial, controlled or before-after study)",
    },
    {"name": "Reviews", "type": "exclude", "value": "Reviews, editorials, commentaries"},
    {
        "name": "Incentives",
        "type": "exclude",
        "value": "Interventions that change economic incentives or forbid options",
    },
]


def load_papers(n: int) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    if DATASET.exists():
        with DATASET.open(newline="", encoding="utf-8") as fh:
            for row in csv.DictReader(fh):
                rows.append(
                    {"id": f"n{row['id']}", "title": row["title"], "abstract": row["abstract"]}
                )
    i = 0
    while len(rows) < n:
        rows.append(
            {
                "id": f"s{i}",
                "title": f"Synthetic trial {i}",
                "abstract": "Randomised trial of reminders for physicians. " * 20,
            }
        )
        i += 1
    return rows[:n]


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def run(args: argparse.Namespace, url: str) -> dict[str, Any]:
    from crystallise.jobs.start import start_services
    from crystallise.jobs.submit import Submission, submit_screening
    from crystallise.screening.schemas import ScreeningRequest

    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        openai_base_url=url,
        openai_api_key="sk-bench-000000000000",
        data_dir=tempfile.mkdtemp(),
        adaptive_concurrency=not args.fixed,  # adaptive is the default
        job_queue="inprocess",  # the pipeline in this process: its CPU and RSS are measured
        log_level="WARNING",
    )
    services = await start_services(settings)
    runner = services.runner
    body = ScreeningRequest(
        papers=load_papers(args.papers),  # type: ignore[arg-type]
        criteria=CRITERIA,
        questions=[
            "Do nudges change healthcare professionals' behaviour towards evidence-based medicine?"
        ],
        model=args.model,
        repetitions=args.repetitions,
        threshold=3.0,
    )
    job_id = (await submit_screening(services, body, Submission(dispatch=False))).id
    estimate = _estimate(services, body)
    rss_before = rss_mb()
    t0 = time.perf_counter()
    cpu0 = time.process_time()
    runner.submit("screening", job_id)
    await runner.wait(job_id)
    wall = time.perf_counter() - t0
    cpu = time.process_time() - cpu0
    await services.aclose()
    row = services.jobs.get_job("screening", job_id)
    assert row is not None and row.status == "completed", (row.status, row.error) if row else None
    return {
        "wall_s": wall,
        "cpu_s": cpu,
        "usage": row.usage,
        "timings": row.stage_timings,
        "rss_before_mb": rss_before,
        "rss_peak_mb": rss_mb(),
        "clusters": len(row.clusters or []),
        "estimate": estimate,
    }


def _estimate(services: Any, body: Any) -> dict[str, Any]:
    """The estimate POST /v1/screening/estimate and job submission make for this job."""
    from crystallise.config.model_capabilities import capabilities_for
    from crystallise.jobs.submit import screening_models
    from crystallise.llm.tokens import estimate_text_tokens
    from crystallise.screening.criteria import normalise_criteria
    from crystallise.screening.estimate import estimate_screening

    main, clustering = screening_models(services, body.model)
    return estimate_screening(
        model=main.model,
        clustering_model=clustering.model,
        assignment_model=services.settings.assignment_model or main.model,
        papers_count=len(body.papers),
        repetitions=body.repetitions,
        criteria_count=len(normalise_criteria(body.criteria)),
        paper_tokens_total=sum(
            estimate_text_tokens(f"{p.title} {p.abstract}") for p in body.papers
        ),
        capabilities=capabilities_for(services.settings, main.model),
        scoring=body.scoring,
        batch=body.batch,
    ).model_dump()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--papers", type=int, default=2000)
    parser.add_argument("--repetitions", type=int, default=5)
    parser.add_argument("--latency", type=float, default=1.0)
    parser.add_argument("--rpm", type=int, default=3000)
    parser.add_argument("--model", default="gpt-4.1-mini", help="'default': the service default")
    parser.add_argument("--window", type=float, default=0.0, help="limits per N-second window")
    parser.add_argument("--no-headers", action="store_true", help="no x-ratelimit-* headers")
    parser.add_argument("--fixed", action="store_true", help="fixed concurrency (not default)")
    args = parser.parse_args()
    args.model = None if args.model == "default" else args.model
    with fake_server() as fake:
        fake.reset(latency_s=args.latency, rpm=args.rpm, window_s=args.window,
                   ratelimit_headers=not args.no_headers)  # fmt: skip
        out = asyncio.run(run(args, fake.url))
        stats = fake.stats()
    n, reps = args.papers, args.repetitions
    calls = sum(int(v) for v in stats["statuses"].values())
    ok_calls = int(stats["statuses"].get("200", 0))
    minimum = calls / args.rpm * 60
    usage = out["usage"]
    label_calls_seed = n * (reps + 1)
    # Seed design: one call per repetition plus one reasoning call, 10 in flight, 1 s each.
    seed_wall = max(label_calls_seed / args.rpm * 60, label_calls_seed * args.latency / 10)
    ours_prompt_per_paper = stats["prompt_tokens"] / n
    label = stats["by_kind"].get("LabelOutput", [1, 1, 0, 0])
    reason = stats["by_kind"].get("ReasoningOutput", [1, 1, 0, 0])
    # Seed design: the labelling prompt is sent once per repetition (same prompt size), each
    # answer as long as one of our n choices, plus one reasoning call per paper.
    seed_tokens_per_paper = (
        reps * (label[2] / label[0] + label[3] / label[1]) + (reason[2] + reason[3]) / reason[0]
    )
    ours_tokens_main = (label[2] + label[3] + reason[2] + reason[3]) / n
    print(
        f"papers={n} repetitions={reps} model={args.model or 'default'} latency={args.latency}s "
        f"limit={args.rpm} RPM window={args.window or 'bucket'} headers={not args.no_headers} "
        f"{'fixed' if args.fixed else 'adaptive (default)'}"
    )
    print(f"| 429 share of attempts | {stats['statuses'].get('429', 0) / max(calls, 1):.2%} | |")
    print("| metric | this design | seed design |")
    print("|---|---|---|")
    print(
        f"| provider calls (attempts) | {calls} ({ok_calls} ok, {stats['statuses'].get('429', 0)} × 429) | {label_calls_seed} + clustering |"
    )
    print(f"| calls per paper | {calls / n:.2f} | {reps + 1} |")
    print(f"| wall time | {out['wall_s']:.1f} s | ≥ {seed_wall:.0f} s (concurrency 10 × 1 s) |")
    print(
        f"| provider-bound minimum (calls ÷ RPM) | {minimum:.1f} s | {label_calls_seed / args.rpm * 60:.0f} s |"
    )
    print(
        f"| wall ÷ minimum | {out['wall_s'] / minimum:.2f}× | {seed_wall / (label_calls_seed / args.rpm * 60):.1f}× |"
    )
    print(
        f"| tokens per paper, labelling + reasoning | {ours_tokens_main:.0f} | {seed_tokens_per_paper:.0f} (derived from this run's per-call sizes) |"
    )
    print(f"| tokens per paper, all stages | {usage['tokens_per_paper']:.0f} | |")
    print(f"| prompt tokens per paper (server count) | {ours_prompt_per_paper:.0f} | |")
    print(
        f"| cached input share | {usage['cached_input_tokens'] / max(usage['input_tokens'], 1):.1%} | |"
    )
    print(f"| cost (fake usage, list prices) | ${usage['estimated_cost_usd']:.4f} | |")
    est = out["estimate"]
    print(
        f"| estimate before the job | ${est['estimated_cost_usd']:.4f} "
        f"({est['estimated_input_tokens']} in, {est['estimated_cached_input_tokens']} cached, "
        f"{est['estimated_output_tokens']} out) | |"
    )
    print(
        f"| tally ÷ estimate | cost {usage['estimated_cost_usd'] / est['estimated_cost_usd']:.2f}, "
        f"input {usage['input_tokens'] / est['estimated_input_tokens']:.2f}, "
        f"output {usage['output_tokens'] / est['estimated_output_tokens']:.2f} | |"
    )
    print(f"| cost per paper (tally) | ${usage['cost_per_paper_usd']:.6f} | |")
    print(
        f"| peak RSS of pipeline process | {out['rss_peak_mb']:.0f} MB (before job {out['rss_before_mb']:.0f} MB) | |"
    )
    print(f"| client CPU | {out['cpu_s']:.1f} s ({1000 * out['cpu_s'] / calls:.2f} ms/call) | |")
    print(f"| stage timings ms | {out['timings']} | |")


if __name__ == "__main__":
    main()
