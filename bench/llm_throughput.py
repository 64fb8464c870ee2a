"""Benchmark: sustained structured calls against a rate-limited fake provider.

    uv run --frozen python -m bench.llm_throughput [--latency 1.0] [--rpm 3000] [--calls 3000] [--fixed-calls 400]

Prints achieved requests/minute as a share of the limit, the 429 count, and client CPU time
per call, for adaptive concurrency and for the fixed default of 10, in the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
from typing import Literal

from pydantic import BaseModel

from bench.fakeproc import FakeProcess, fake_server
from crystallise.config.settings import Settings
from crystallise.llm.client import LLMClient
from crystallise.llm.errors import LLMError


class Score(BaseModel):
    reasoning: str
    score: Literal[1, 2, 3, 4, 5]


async def run_mode(
    fake: FakeProcess, *, adaptive: bool, calls: int, latency: float, rpm: int
) -> dict[str, float]:
    fake.reset(latency_s=latency, rpm=rpm)
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        openai_base_url=fake.url,
        openai_api_key="sk-bench-000000000000",
        adaptive_concurrency=adaptive,
        data_dir=tempfile.gettempdir(),
    )
    client = LLMClient(settings)
    system = {"role": "system", "content": "Rate the paper against the criteria from 1 to 5."}

    async def one(i: int) -> bool:
        try:
            await client.chat(
                [system, {"role": "user", "content": f"Paper {i}: a randomised trial."}],
                model="gpt-4.1-mini",
                output_schema=Score,
                max_output_tokens=200,
            )
            return True
        except LLMError:
            return False

    cpu0, t0 = time.process_time(), time.perf_counter()
    ok = sum(await asyncio.gather(*(one(i) for i in range(calls))))
    wall = time.perf_counter() - t0
    cpu = time.process_time() - cpu0
    await client.aclose()
    stats = fake.stats()
    achieved = calls / wall * 60
    attempts = sum(int(v) for v in stats["statuses"].values())
    return {
        "calls": calls,
        "ok": ok,
        "wall_s": wall,
        "achieved_rpm": achieved,
        "share_of_limit": achieved / rpm,
        "http_429": int(stats["statuses"].get("429", 0)),
        "attempts": attempts,
        "pct_429": 100 * int(stats["statuses"].get("429", 0)) / max(attempts, 1),
        "client_cpu_ms_per_call": 1000 * cpu / calls,
        "peak_concurrency": stats["peak_concurrency"],
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--latency", type=float, default=1.0)
    parser.add_argument("--rpm", type=int, default=3000)
    parser.add_argument("--calls", type=int, default=3000)
    parser.add_argument("--fixed-calls", type=int, default=400)
    args = parser.parse_args()
    os.environ.pop("OPENAI_API_KEY", None)
    with fake_server() as fake:
        rows = [
            (
                "adaptive",
                asyncio.run(
                    run_mode(
                        fake, adaptive=True, calls=args.calls, latency=args.latency, rpm=args.rpm
                    )
                ),
            ),
            (
                "fixed-10",
                asyncio.run(
                    run_mode(
                        fake,
                        adaptive=False,
                        calls=args.fixed_calls,
                        latency=args.latency,
                        rpm=args.rpm,
                    )
                ),
            ),
        ]
    print(f"latency={args.latency}s limit={args.rpm} RPM")
    print(
        "| mode | calls | wall s | achieved RPM | share of limit | 429s (% of attempts) | client CPU ms/call | peak concurrency |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for name, r in rows:
        print(
            f"| {name} | {r['calls']:.0f} | {r['wall_s']:.1f} | {r['achieved_rpm']:.0f} | {r['share_of_limit']:.1%} | "
            f"{r['http_429']:.0f} ({r['pct_429']:.2f}%) | {r['client_cpu_ms_per_call']:.2f} | {r['peak_concurrency']:.0f} |"
        )


if __name__ == "__main__":
    main()
