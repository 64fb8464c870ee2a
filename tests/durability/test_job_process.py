"""The default on SQLite: `crystallise serve` runs jobs in its own child process (issue 10).

Through HTTP against the real CLI on default settings: a job completes, cancel reaches the
job process, a per-request key is used and never stored, and if the job process dies the
server starts another that resumes the job from its checkpoint."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.durability.test_crash_recovery import Proc, _env, _http
from tests.fake_openai import FakeOpenAIServer, free_port

PAPERS = [
    {"id": f"p{i}", "title": f"Paper {i} on reminders", "abstract": f"Trial {i} of reminders."}
    for i in range(40)
]


def _job(base: str, job_id: str) -> dict[str, Any]:
    return dict(_http("GET", f"{base}/v1/screening/jobs/{job_id}"))


def _until(base: str, job_id: str, done: Any, timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body = _job(base, job_id)
        if done(body):
            return body
        time.sleep(0.1)
    raise AssertionError(f"job state not reached: {body}")


def wait_healthy(base: str, log: Path, timeout: float = 60) -> None:
    """Until ``crystallise serve`` at ``base`` answers /health (its log on failure)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx.get(f"{base}/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline, log.read_text()[-2000:]
        time.sleep(0.2)


def _job_process_pid(serve_pid: int) -> int:
    children = Path(f"/proc/{serve_pid}/task/{serve_pid}/children").read_text().split()
    assert children, "no job process beside the server"
    return int(children[0])


@pytest.fixture
def server(tmp_path: Path, fake: FakeOpenAIServer) -> Any:
    port = free_port()
    env = _env(tmp_path, fake)
    env.pop("CRYSTALLISE_JOB_QUEUE", None)  # the default
    proc = Proc(["serve", "--port", str(port)], env, tmp_path / "serve.log")
    base = f"http://127.0.0.1:{port}"
    wait_healthy(base, tmp_path / "serve.log")
    yield base, proc
    proc.stop()


def test_jobs_run_in_a_job_process_and_complete(server: Any, fake: FakeOpenAIServer) -> None:
    base, proc = server
    body = {"papers": PAPERS, "model": "gpt-4.1-mini", "repetitions": 3}
    key = "sk-caller-0123456789abcdefXYZ"
    created = _http("POST", f"{base}/v1/screening/jobs", body, {"X-OpenAI-API-Key": key})
    assert _job_process_pid(proc.p.pid) != proc.p.pid
    final = _until(
        base, created["job_id"], lambda b: b["status"] in ("completed", "failed", "cancelled")
    )
    assert final["status"] == "completed" and len(final["results"]) == len(PAPERS)
    assert {r["key"] for r in fake.requests()} == {key}  # the key crossed the pipe, only


def test_cancel_reaches_the_job_process(server: Any, fake: FakeOpenAIServer) -> None:
    base, _ = server
    fake.configure(latency_s=0.3)
    body = {"papers": PAPERS * 5, "model": "gpt-4.1-mini", "repetitions": 3}
    body["papers"] = [{**p, "id": f"{p['id']}-{i}"} for i, p in enumerate(body["papers"])]
    job_id = _http("POST", f"{base}/v1/screening/jobs", body)["job_id"]
    _until(base, job_id, lambda b: b["status"] == "running")
    _http("POST", f"{base}/v1/screening/jobs/{job_id}/cancel", {})
    final = _until(base, job_id, lambda b: b["status"] in ("cancelled", "completed", "failed"))
    assert final["status"] == "cancelled"


def test_a_dead_job_process_is_replaced_and_the_job_resumes(
    server: Any, fake: FakeOpenAIServer
) -> None:
    base, proc = server
    fake.configure(latency_s=0.2)
    body = {"papers": PAPERS * 3, "model": "gpt-4.1-mini", "repetitions": 3}
    body["papers"] = [{**p, "id": f"{p['id']}-{i}"} for i, p in enumerate(body["papers"])]
    job_id = _http("POST", f"{base}/v1/screening/jobs", body)["job_id"]
    _until(base, job_id, lambda b: b["progress"] > 0.1)
    os.kill(_job_process_pid(proc.p.pid), signal.SIGKILL)
    assert httpx.get(f"{base}/health", timeout=5).status_code == 200  # the API is unaffected
    final = _until(base, job_id, lambda b: b["status"] in ("completed", "failed"), timeout=90)
    assert final["status"] == "completed", final.get("error")
    ids = [r["id"] for r in final["results"]]
    assert len(ids) == len(set(ids)) == len(body["papers"])
