"""API responsiveness while a big job runs (issue 10), and the poll of a finished job
(issue 28).

    uv run --frozen python -m bench.api_responsiveness [--db sqlite|postgresql|both]
        [--papers 3000] [--latency 0.2] [--concurrency 50] [--rate 50]
    uv run --frozen python -m bench.api_responsiveness --finished 3000 20000 [--db ...]

Starts `crystallise serve` on its default settings (plus the fake provider's URL and
CRYSTALLISE_MAX_CONCURRENT_REQUESTS=50), and on PostgreSQL one `crystallise worker` beside it,
as an operator would. It measures GET /health and GET /v1/screening/jobs/{id}, open loop at
``--rate`` requests a second in all (alternating), first for 5 s with no job, then while one
``--papers``-paper screening job runs against the fake provider (``--latency`` s per call) in
its own process. Reports p50/p99/max per endpoint and phase, and the job's wall time.

``--finished N ...``: instead, for each N one mock screening job of N papers (real titles and
abstracts, 3 repetitions, no provider calls) is run to the end, then its
``GET /v1/screening/jobs/{id}`` (every result inline, as the contract says) is timed
``--gets`` times one after the other; median and max, and the body's size.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from bench.fakeproc import fake_server
from bench.soak import _proc
from tests.fake_openai import free_port

CRITERIA = [
    {"name": "Population", "type": "include", "value": "Healthcare professionals"},
    {"name": "Intervention", "type": "include", "value": "A nudge or choice-architecture change"},
    {"name": "Design", "type": "exclude", "value": "Editorials, commentaries, protocols"},
]
BASELINE_S = 5.0


def _papers(n: int) -> list[dict[str, str]]:
    from bench.screening_throughput import load_papers

    return [{k: p[k] for k in ("id", "title", "abstract")} for p in load_papers(n)]


async def _wait_ready(client: httpx.AsyncClient) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if (await client.get("/health/ready")).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        await asyncio.sleep(0.2)
    raise SystemExit("the service did not become ready")


async def _probe(
    client: httpx.AsyncClient, path: str, out: list[float], errors: list[int]
) -> dict[str, Any] | None:
    t0 = time.perf_counter()
    try:
        response = await client.get(path)
    except httpx.HTTPError:
        errors.append(0)
        return None
    out.append((time.perf_counter() - t0) * 1000)
    if response.status_code != 200:
        errors.append(response.status_code)
        return None
    return dict(response.json())


async def _poll(
    client: httpx.AsyncClient, job_id: str | None, rate: float, until: Any
) -> dict[str, Any]:
    """Open loop: one request every 1/rate s (health and job alternately) until ``until()``."""
    samples: dict[str, list[float]] = {"health": [], "job": []}
    errors: list[int] = []
    tasks: set[asyncio.Task[Any]] = set()
    state: dict[str, Any] = {}
    start = time.perf_counter()
    i = 0
    while not until(state):
        target = start + i / rate
        await asyncio.sleep(max(0.0, target - time.perf_counter()))
        if job_id is not None and i % 2:
            task = asyncio.create_task(
                _probe(client, f"/v1/screening/jobs/{job_id}", samples["job"], errors)
            )
            task.add_done_callback(
                lambda t: state.update(t.result() or {}) if not t.cancelled() else None
            )
        else:
            task = asyncio.create_task(_probe(client, "/health", samples["health"], errors))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
        i += 1
    await asyncio.gather(*tasks)
    return {"samples": samples, "errors": errors, "state": state}


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def _summary(samples: list[float]) -> dict[str, float]:
    return {
        "n": len(samples),
        "p50_ms": round(statistics.median(samples), 1) if samples else float("nan"),
        "p99_ms": round(_pct(samples, 0.99), 1),
        "max_ms": round(max(samples), 1) if samples else float("nan"),
    }


async def _measure(base: str, papers: list[dict[str, str]], rate: float) -> dict[str, Any]:
    limits = httpx.Limits(max_connections=200, max_keepalive_connections=200)
    async with httpx.AsyncClient(base_url=base, timeout=60, limits=limits) as client:
        await _wait_ready(client)
        t_end = time.perf_counter() + BASELINE_S
        idle = await _poll(client, None, rate / 2, lambda _: time.perf_counter() > t_end)
        body = {"papers": papers, "criteria": CRITERIA, "repetitions": 5}
        created = await client.post("/v1/screening/jobs", json=body)
        created.raise_for_status()
        job_id = created.json()["job_id"]
        t0 = time.perf_counter()
        busy = await _poll(
            client,
            job_id,
            rate,
            lambda s: s.get("status") in ("completed", "failed", "cancelled"),
        )
        wall = time.perf_counter() - t0
    return {
        "idle_health": _summary(idle["samples"]["health"]),
        "busy_health": _summary(busy["samples"]["health"]),
        "busy_job": _summary(busy["samples"]["job"]),
        "errors": idle["errors"] + busy["errors"],
        "job_status": busy["state"].get("status"),
        "job_error": busy["state"].get("error"),
        "job_wall_s": round(wall, 1),
    }


async def _finished(base: str, sizes: list[int], gets: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    async with httpx.AsyncClient(base_url=base, timeout=300) as client:
        await _wait_ready(client)
        for size in sizes:
            base_papers = _papers(min(size, 2000))
            papers = [{**base_papers[i % len(base_papers)], "id": f"p{i}"} for i in range(size)]
            body = {"papers": papers, "criteria": CRITERIA, "repetitions": 3, "mock": True}
            created = await client.post("/v1/screening/jobs", json=body)
            created.raise_for_status()
            path = f"/v1/screening/jobs/{created.json()['job_id']}"
            while (await client.get(path)).json()["status"] != "completed":
                await asyncio.sleep(1)
            times, size_mb = [], 0.0
            for _ in range(gets):
                t0 = time.perf_counter()
                response = await client.get(path)
                times.append((time.perf_counter() - t0) * 1000)
                size_mb = len(response.content) / 1e6
                assert len(response.json()["results"]) == size
            out[str(size)] = {"median_ms": round(statistics.median(times), 1),
                              "max_ms": round(max(times), 1), "body_mb": round(size_mb, 1)}  # fmt: skip
    return out


def _pg_database(admin_url: str) -> str:
    """A fresh database on the PostgreSQL server (CRYSTALLISE_TEST_POSTGRES_URL)."""
    import uuid

    import psycopg

    name = f"crystallise_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return f"{admin_url.rsplit('/', 1)[0]}/{name}"


def run_one(db: str, args: argparse.Namespace, fake_url: str) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="crystallise-resp-"))
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRYSTALLISE_")}
    env.update(
        CRYSTALLISE_DATA_DIR=str(work),
        CRYSTALLISE_OPENAI_BASE_URL=fake_url,
        CRYSTALLISE_OPENAI_API_KEY="sk-bench-000000000000",
        CRYSTALLISE_MAX_CONCURRENT_REQUESTS=str(args.concurrency),
        CRYSTALLISE_LOG_LEVEL="WARNING",
    )
    procs: list[subprocess.Popen[bytes]] = []
    try:
        if db == "postgresql":
            env["CRYSTALLISE_DATABASE_URL"] = _pg_database(args.postgres)
            subprocess.run(
                [sys.executable, "-m", "crystallise.cli", "db", "upgrade"], env=env, check=True
            )
            procs.append(_proc(["worker"], env, work / "worker.log"))
        procs.append(_proc(["serve", "--port", str(port)], env, work / "serve.log"))
        base = f"http://127.0.0.1:{port}"
        if args.finished:
            return asyncio.run(_finished(base, args.finished, args.gets))
        return asyncio.run(_measure(base, _papers(args.papers), args.rate))
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--papers", type=int, default=3000)
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--rate", type=float, default=50.0)
    parser.add_argument("--finished", type=int, nargs="*", help="job sizes: time finished polls")
    parser.add_argument("--gets", type=int, default=10)
    parser.add_argument(
        "--postgres",
        default=os.environ.get(
            "CRYSTALLISE_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
        ),
        help="admin URL of the PostgreSQL server (a fresh database is created on it)",
    )
    args = parser.parse_args()
    dbs = ["sqlite", "postgresql"] if args.db == "both" else [args.db]
    out: dict[str, Any] = {}
    with fake_server() as fake:
        for db in dbs:
            fake.reset(latency_s=args.latency)
            out[db] = run_one(db, args, fake.url)
            out[db]["provider_stats"] = {
                k: v for k, v in fake.stats().items() if isinstance(v, int | float)
            }
            print(db, json.dumps(out[db]), flush=True)
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
