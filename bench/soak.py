"""Soak: 10 jobs × 500 papers under 10% injected provider faults and one PostgreSQL restart.

    uv run --frozen python -m bench.soak [--jobs 10] [--papers 500] [--fault-rate 0.1]

Real parts: a private PostgreSQL cluster on its own port (server binaries needed: Debian's
`postgresql`), `crystallise serve` plus two `crystallise worker` processes on default
settings, and the fake provider in its own process (50 ms latency; 10% of chat calls answer
500, 503 or time out). Once a quarter of the work is done the cluster is restarted
(`pg_ctl restart -m fast`). Jobs that end `failed`, or with failed papers, are resumed with
POST .../retry (at most 3 rounds). Reports: jobs completed (first pass / after retry), papers
lost or duplicated (goal 0), and answered model calls paid twice for the same paper and stage
(goal: at most the calls in flight at the restart, ≤ 2 workers × 10).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from bench.fakeproc import fake_server
from tests import pgcluster
from tests.fake_openai import free_port

CRITERIA = [{"name": "Population", "type": "include", "value": "Adults"}]


def _http(method: str, url: str, body: Any = None) -> Any:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(
        url, data=data, method=method, headers={"content-type": "application/json"}
    )
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return json.loads(resp.read())
    except (urllib.error.URLError, OSError, ValueError):
        return None  # the API fails fast while the database restarts: ask again


def _proc(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "crystallise.cli", *args],
        env=env,
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
    )


def _statuses(base: str, ids: list[str]) -> dict[str, dict[str, Any]]:
    out = {}
    for job_id in ids:
        body = _http("GET", f"{base}/v1/screening/jobs/{job_id}")
        if body:
            out[job_id] = body
    return out


def _wait_all(base: str, ids: list[str], timeout: float) -> dict[str, dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = _statuses(base, ids)
        if len(state) == len(ids) and all(
            b["status"] in ("completed", "failed", "cancelled") for b in state.values()
        ):
            return state
        time.sleep(1.0)
    raise SystemExit("soak: jobs did not finish in time")


def run(jobs: int, papers: int, fault_rate: float) -> dict[str, Any]:
    if not pgcluster.available():
        raise SystemExit("soak needs PostgreSQL server binaries (apt-get install postgresql)")
    work = Path(tempfile.mkdtemp(prefix="crystallise-soak-"))
    with pgcluster.private_cluster() as cluster, fake_server() as fake:
        fake.reset(
            latency_s=0.05,
            fault_rate=fault_rate,
            fault_kinds=[500, 503, "timeout"],
            timeout_sleep_s=0.5,
            fault_seed=7,
        )
        env = {k: v for k, v in os.environ.items() if not k.startswith(("CRYSTALLISE_", "OPENAI_"))}
        env.update(
            {
                "CRYSTALLISE_DATABASE_URL": cluster.url,
                "CRYSTALLISE_OPENAI_BASE_URL": fake.url,
                "CRYSTALLISE_OPENAI_API_KEY": "sk-soak-000000000000",
                "CRYSTALLISE_LOG_JSON": "true",
            }
        )
        subprocess.run(
            [sys.executable, "-m", "crystallise.cli", "db", "upgrade"], env=env, check=True
        )
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        procs = [
            _proc(["serve", "--host", "127.0.0.1", "--port", str(port)], env, work / "api.log"),
            _proc(["worker"], env, work / "worker1.log"),
            _proc(["worker"], env, work / "worker2.log"),
        ]
        try:
            while _http("GET", f"{base}/health") is None:
                time.sleep(0.2)
            started = time.monotonic()
            ids = []
            for j in range(jobs):
                body = {
                    "papers": [
                        {"id": f"j{j}p{i}", "title": f"Soak {j}/{i}", "abstract": f"{i} adults."}
                        for i in range(papers)
                    ],
                    "criteria": CRITERIA,
                    "model": "gpt-4.1-mini",
                    "repetitions": 3,
                }
                ids.append(_http("POST", f"{base}/v1/screening/jobs", body)["job_id"])
            while True:  # restart the database once a quarter of the work is done
                state = _statuses(base, ids)
                if state and sum(b["progress"] for b in state.values()) / len(ids) >= 0.25:
                    break
                time.sleep(0.3)
            restart_at = time.monotonic() - started
            cluster.restart()
            first = _wait_all(base, ids, timeout=1800)
            completed_first = sum(
                b["status"] == "completed" and not b.get("failed_count") for b in first.values()
            )
            rounds = 0
            final = first
            while rounds < 3 and any(
                b["status"] != "completed" or b.get("failed_count") for b in final.values()
            ):
                rounds += 1
                for job_id, b in final.items():
                    if b["status"] != "completed" or b.get("failed_count"):
                        _http("POST", f"{base}/v1/screening/jobs/{job_id}/retry")
                final = _wait_all(base, ids, timeout=1800)
            wall = time.monotonic() - started
            lost = duplicated = unfinished = 0
            for b in final.values():
                got = [r["id"] for r in b.get("results") or []]
                duplicated += len(got) - len(set(got))
                lost += papers - len(set(got))
                unfinished += sum(1 for r in b.get("results") or [] if "error" in r)
            stats = fake.stats()
        finally:
            for proc in procs:
                proc.terminate()
                proc.wait(timeout=30)
    repeated = stats["repeated_paid"]
    return {
        "jobs": jobs,
        "papers_per_job": papers,
        "fault_rate": fault_rate,
        "restart_at_s": round(restart_at, 1),
        "wall_s": round(wall, 1),
        "jobs_completed_first_pass": completed_first,
        "jobs_completed_after_retry": sum(
            b["status"] == "completed" and not b.get("failed_count") for b in final.values()
        ),
        "retry_rounds": rounds,
        "papers_lost": lost,
        "papers_duplicated": duplicated,
        "papers_with_error_at_end": unfinished,
        "repeated_paid_label_calls": repeated.get("LabelOutput", 0),
        "repeated_paid_reasoning_calls": repeated.get("ReasoningOutput", 0),
        "provider_statuses": stats.get("statuses"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", type=int, default=10)
    parser.add_argument("--papers", type=int, default=500)
    parser.add_argument("--fault-rate", type=float, default=0.1)
    args = parser.parse_args()
    print(json.dumps(run(args.jobs, args.papers, args.fault_rate), indent=2))


if __name__ == "__main__":
    main()
