"""Benchmark: sustained structured calls against a rate-limited fake provider.

    uv run --frozen python -m bench.llm_throughput [--latency 1.0] [--rpm 3000] [--calls 3000] [--fixed-calls 400] [--hundred-calls 3000] [--httpx-baseline] [--profile]

Prints achieved requests/minute as a share of the limit, the 429 count, and client CPU time
per call, for adaptive concurrency, for the fixed default of 10, and for 100 calls held in
flight (``fixed-100``: CRYSTALLISE_MAX_CONCURRENT_REQUESTS=100 against a limit it never
reaches, the client's CPU per call at that load), in the same run. ``--profile`` prints
where the fixed-100 mode's CPU went (cProfile, by package).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import tempfile
import time
from collections.abc import Iterator
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
    fake: FakeProcess,
    *,
    adaptive: bool,
    calls: int,
    latency: float,
    rpm: int,
    concurrency: int | None = None,
) -> dict[str, float]:
    fake.reset(latency_s=latency, rpm=rpm)
    extra = {} if concurrency is None else {"max_concurrent_requests": concurrency}
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        openai_base_url=fake.url,
        openai_api_key="sk-bench-000000000000",
        adaptive_concurrency=adaptive,
        data_dir=tempfile.gettempdir(),
        **extra,
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


def _profiled(fake: FakeProcess, calls: int, latency: float) -> dict[str, float]:
    """The fixed-100 mode under cProfile; prints own CPU time by package."""
    import cProfile
    import pstats

    profiler = cProfile.Profile(time.process_time)  # CPU time, not waiting
    profiler.enable()
    result = _fixed_100(fake, calls, latency)
    profiler.disable()
    by_package: dict[str, float] = {}
    stats = pstats.Stats(profiler).stats  # type: ignore[attr-defined]
    for (filename, _line, name), (_cc, _nc, own, _cum, _callers) in stats.items():
        parts = filename.replace("\\", "/").split("/")
        package = next(
            (parts[i + 1] for i, part in enumerate(parts[:-1]) if part == "site-packages"),
            "crystallise" if "crystallise" in parts else (parts[-1] or "builtins"),
        )
        if package == "~":  # a C function: name it
            package = name
        by_package[package] = by_package.get(package, 0.0) + own
    total = sum(by_package.values())
    print("| package | own CPU ms/call | share |\n|---|---|---|")
    for package, own in sorted(by_package.items(), key=lambda kv: -kv[1])[:12]:
        print(f"| {package} | {1000 * own / calls:.3f} | {own / total:.1%} |")
    return result


def _fixed_100(fake: FakeProcess, calls: int, latency: float) -> dict[str, float]:
    return asyncio.run(
        run_mode(fake, adaptive=False, calls=calls, latency=latency, rpm=1_000_000, concurrency=100)
    )


@contextlib.contextmanager
def _httpx_transport() -> Iterator[None]:
    """The SDK's default transport (httpx) instead of aiohttp: the previous client."""
    import openai

    from crystallise.llm import client as client_module

    aiohttp_client = client_module.DefaultAioHttpClient
    client_module.DefaultAioHttpClient = openai.DefaultAsyncHttpxClient  # type: ignore[misc]
    try:
        yield
    finally:
        client_module.DefaultAioHttpClient = aiohttp_client  # type: ignore[misc]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--latency", type=float, default=1.0)
    parser.add_argument("--rpm", type=int, default=3000)
    parser.add_argument("--calls", type=int, default=3000)
    parser.add_argument("--fixed-calls", type=int, default=400)
    parser.add_argument("--hundred-calls", type=int, default=3000)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument(
        "--httpx-baseline",
        action="store_true",
        help="run every mode on the SDK's default httpx transport too (the previous client)",
    )
    args = parser.parse_args()
    os.environ.pop("OPENAI_API_KEY", None)

    def adaptive(fake: FakeProcess) -> dict[str, float]:
        return asyncio.run(
            run_mode(fake, adaptive=True, calls=args.calls, latency=args.latency, rpm=args.rpm)
        )

    def fixed_10(fake: FakeProcess) -> dict[str, float]:
        return asyncio.run(
            run_mode(
                fake, adaptive=False, calls=args.fixed_calls, latency=args.latency, rpm=args.rpm
            )
        )

    def fixed_100(fake: FakeProcess) -> dict[str, float]:
        run = _profiled if args.profile else _fixed_100
        return run(fake, args.hundred_calls, args.latency)

    modes = [
        (name, mode)
        for name, mode, calls in (
            ("adaptive", adaptive, args.calls),
            ("fixed-10", fixed_10, args.fixed_calls),
            ("fixed-100", fixed_100, args.hundred_calls),
        )
        if calls
    ]
    rows = []
    with fake_server() as fake:
        for name, mode in modes:
            if args.httpx_baseline:
                with _httpx_transport():
                    rows.append((f"{name}, httpx transport", mode(fake)))
            rows.append((name, mode(fake)))
    print(f"latency={args.latency}s limit={args.rpm} RPM (fixed-100: no limit reached)")
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
