"""Benchmark: calls, tokens and cost per paper of one screening job per scoring/transport
mode (samples or distribution scoring, live calls or the Batch API), each against the
estimate made before it, on the fake provider.

    uv run --frozen python -m bench.cost_modes [--papers 300] [--repetitions 5]

The fake answers with realistic lengths (a reasoning text of 60-90 words) and bills 96
hidden reasoning tokens per answer of a call that carries reasoning_effort: the estimate's
own allowance (screening/estimate.py REASONING_MODEL_ALLOWANCE), which no fake can measure;
so "tally ÷ estimate" checks every other part of the token model (prompts, cache hits,
outputs, calls per paper, batch prices) and not that allowance.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from typing import Any

from bench.fakeproc import bench_settings, fake_server
from bench.screening_throughput import CRITERIA, _estimate, load_papers

MODES = [  # (label, model, scoring, batch)
    ("samples, live", None, "samples", False),
    ("samples, batch", None, "samples", True),
    ("samples, live", "gpt-4.1-mini", "samples", False),
    ("distribution, live", "gpt-4.1-mini", "distribution", False),
    ("distribution, batch", "gpt-4.1-mini", "distribution", True),
    # a local model (outside the price table: $0) with log-probabilities and no n
    ("samples, live", "qwen2.5-7b-instruct", "samples", False),
    ("distribution, live", "qwen2.5-7b-instruct", "distribution", False),
]


async def one_job(
    url: str, papers: int, reps: int, model: str | None, scoring: str, batch: bool
) -> dict[str, Any]:
    from crystallise.jobs.start import start_services
    from crystallise.jobs.submit import Submission, submit_screening
    from crystallise.screening.schemas import ScreeningRequest

    settings = bench_settings(url, batch_poll_s=0.5)
    services = await start_services(settings)
    body = ScreeningRequest(
        papers=load_papers(papers),  # type: ignore[arg-type]
        criteria=CRITERIA,
        questions=[
            "Do nudges change healthcare professionals' behaviour towards evidence-based medicine?"
        ],
        model=model,
        repetitions=reps,
        threshold=3.0,
        scoring=scoring,  # type: ignore[arg-type]
        batch=batch,
    )
    job_id = (await submit_screening(services, body, Submission(dispatch=False))).id
    estimate = _estimate(services, body)
    t0 = time.perf_counter()
    services.runner.submit("screening", job_id)
    await services.runner.wait(job_id)
    wall = time.perf_counter() - t0
    await services.aclose()
    row = services.jobs.get_job("screening", job_id)
    assert row is not None and row.status == "completed", (row.status, row.error) if row else None
    return {"usage": row.usage, "estimate": estimate, "wall_s": wall, "model": row.model}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--papers", type=int, default=300)
    parser.add_argument("--repetitions", type=int, default=5)
    parser.add_argument("--only", default="", help="run the modes whose label contains this")
    args = parser.parse_args()
    print(f"papers={args.papers} repetitions={args.repetitions}")
    print(
        "| model | mode | calls/paper (live + batch lines) | tokens/paper | cost/paper (tally) "
        "| estimate/paper | tally ÷ estimate (cost, input, output) | wall |"
    )
    print("|---|---|---|---|---|---|---|---|")
    with fake_server() as fake:
        for label, model, scoring, batch in MODES:
            if args.only and args.only not in f"{model} {label}":
                continue
            fake.reset(reasoning_tokens=96, reasoning_words=[60, 90], batch_delay_s=1.0)
            out = asyncio.run(
                one_job(fake.url, args.papers, args.repetitions, model, scoring, batch)
            )
            stats = fake.stats()
            lines = stats["calls"].get("batch_line", 0)
            u, e = out["usage"], out["estimate"]
            n = args.papers
            print(
                f"| {out['model']} | {label} | {u['calls_per_paper']:.2f} "
                f"({stats['calls'].get('chat', 0) / n:.2f} + {lines / n:.2f}) "
                f"| {u['tokens_per_paper']:.0f} | ${u['cost_per_paper_usd']:.7f} "
                f"| ${e['cost_per_paper_usd']:.7f} "
                f"| {u['estimated_cost_usd'] / max(e['estimated_cost_usd'], 1e-12):.2f}, "
                f"{u['input_tokens'] / e['estimated_input_tokens']:.2f}, "
                f"{u['output_tokens'] / e['estimated_output_tokens']:.2f} | {out['wall_s']:.1f} s |"
            )


if __name__ == "__main__":
    main()
