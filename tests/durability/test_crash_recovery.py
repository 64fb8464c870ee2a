"""Jobs survive SIGKILL: real processes, the fake provider with latency, SQLite and PostgreSQL."""

from __future__ import annotations

import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

from tests.conftest import SERVER_KEY, _reset_pg
from tests.fake_openai import FakeOpenAIServer, free_port

N_PAPERS = 60
TITLE = re.compile(r"Title: Durable paper (\d+)\b")


def _env(tmp_path: Path, fake: FakeOpenAIServer, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CRYSTALLISE_", "OPENAI_"))}
    env.update(
        {
            "CRYSTALLISE_DATA_DIR": str(tmp_path),
            "CRYSTALLISE_OPENAI_BASE_URL": fake.url,
            "CRYSTALLISE_OPENAI_API_KEY": SERVER_KEY,
            "CRYSTALLISE_MAX_CONCURRENT_REQUESTS": "4",
            "CRYSTALLISE_RETRY_DELAYS": "[0.05, 0.05, 0.05]",
            "CRYSTALLISE_LOG_JSON": "true",
            "CRYSTALLISE_WORKER_HEARTBEAT_S": "0.5",
            "CRYSTALLISE_WORKER_STALLED_AFTER_S": "3",
            **extra,
        }
    )
    return env


class Proc:
    def __init__(self, args: list[str], env: dict[str, str], log: Path) -> None:
        self.log = log
        self.handle = log.open("ab")
        self.p = subprocess.Popen(
            [sys.executable, "-m", "crystallise.cli", *args],
            env=env,
            stdout=self.handle,
            stderr=subprocess.STDOUT,
        )

    def kill(self) -> None:
        self.p.send_signal(signal.SIGKILL)
        self.p.wait(timeout=10)

    def stop(self) -> None:
        if self.p.poll() is None:
            self.p.terminate()
            try:
                self.p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()
        self.handle.close()


def _http(method: str, url: str, body: Any = None, headers: dict[str, str] | None = None) -> Any:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(
        url,
        data=data,
        method=method,
        headers={"content-type": "application/json", **(headers or {})},
    )
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.loads(resp.read())


def _wait_http(base: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            _http("GET", f"{base}/health")
            return
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"server at {base} did not start")


def _submit(base: str, headers: dict[str, str] | None = None) -> str:
    papers = [
        {
            "id": f"d{i}",
            "title": f"Durable paper {i} on nudges for physicians",
            "abstract": f"A randomised trial with {100 + i} physicians receiving reminders.",
        }
        for i in range(N_PAPERS)
    ]
    body = {
        "papers": papers,
        "criteria": [{"name": "Population", "type": "include", "value": "Physicians"}],
        "model": "gpt-4.1-mini",
        "repetitions": 3,
    }
    return str(_http("POST", f"{base}/v1/screening/jobs", body, headers)["job_id"])


def _stored(base: str, job_id: str) -> dict[str, str]:
    page = _http("GET", f"{base}/v1/screening/jobs/{job_id}/results?limit=1000")
    return {r["id"]: r["status"] for r in page["results"]}


def _wait_for_some(base: str, job_id: str, at_least: int = 8) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        done = [s for s in _stored(base, job_id).values() if s != "pending"]
        if len(done) >= at_least:
            return
        time.sleep(0.1)
    raise AssertionError("job made no progress")


def _wait_done(base: str, job_id: str, timeout: float = 120) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body = _http("GET", f"{base}/v1/screening/jobs/{job_id}")
        if body["status"] in ("completed", "failed", "cancelled"):
            return dict(body)
        time.sleep(0.2)
    raise AssertionError(f"job did not finish: {body['status']} {body['progress']}")


def _assert_exactly_once_and_no_resend(
    fake: FakeOpenAIServer, body: dict[str, Any], stored_at_kill: dict[str, str], killed_at: float
) -> None:
    assert body["status"] == "completed", body.get("error")
    ids = [r["id"] for r in body["results"]]
    assert sorted(ids) == sorted(f"d{i}" for i in range(N_PAPERS)) and len(ids) == len(set(ids))
    assert all("final_score" in r and r["reasoning"] for r in body["results"])
    labelled = {k for k, s in stored_at_kill.items() if s in ("labelled", "reasoned", "done")}
    reasoned = {k for k, s in stored_at_kill.items() if s in ("reasoned", "done")}
    assert labelled, "nothing was stored before the kill"
    for record in fake.requests():
        if record["t"] <= killed_at:
            continue
        schema = record["body"]["response_format"]["json_schema"]["name"]
        match = TITLE.search(record["body"]["messages"][-1]["content"])
        if not match:
            continue
        paper = f"d{match.group(1)}"
        if schema == "LabelOutput":
            assert paper not in labelled, f"{paper} labelled again after its scores were stored"
        if schema == "ReasoningOutput":
            assert paper not in reasoned, f"{paper} reasoned again after its reasoning was stored"


def test_sigkill_mid_job_then_restart_completes_exactly_once(
    tmp_path: Path, fake: FakeOpenAIServer
) -> None:
    fake.configure(latency_s=0.15)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = _env(tmp_path, fake)
    server = Proc(
        ["serve", "--host", "127.0.0.1", "--port", str(port)], env, tmp_path / "serve.log"
    )
    try:
        _wait_http(base)
        job_id = _submit(base)
        _wait_for_some(base, job_id)
        server.kill()
        killed_at = time.time()
    finally:
        server.stop()
    # what the database holds after the crash is what counts as stored
    con = sqlite3.connect(tmp_path / "crystallise.db")
    stored = {
        row[0]: row[1]
        for row in con.execute("select item_id, status from job_items where job_id = ?", (job_id,))
    }
    assert (
        con.execute("select status from screening_jobs where id = ?", (job_id,)).fetchone()[0]
        == "running"
    )
    con.close()
    assert 0 < sum(s != "pending" for s in stored.values()) < N_PAPERS

    restarted = Proc(
        ["serve", "--host", "127.0.0.1", "--port", str(port)], env, tmp_path / "serve2.log"
    )
    try:
        _wait_http(base)
        body = _wait_done(base, job_id)
    finally:
        restarted.stop()
    _assert_exactly_once_and_no_resend(fake, body, stored, killed_at)


def test_worker_killed_mid_job_is_picked_up_by_another(
    tmp_path: Path, fake: FakeOpenAIServer, pg_url: str
) -> None:
    _reset_pg(pg_url)
    fake.configure(latency_s=0.15)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = _env(tmp_path, fake, CRYSTALLISE_DATABASE_URL=pg_url)
    upgrade = subprocess.run(
        [sys.executable, "-m", "crystallise.cli", "db", "upgrade"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert upgrade.returncode == 0, upgrade.stderr
    api = Proc(["serve", "--host", "127.0.0.1", "--port", str(port)], env, tmp_path / "api.log")
    worker_a = Proc(["worker", "--concurrency", "2"], env, tmp_path / "worker_a.log")
    worker_b: Proc | None = None
    try:
        _wait_http(base)
        job_id = _submit(base)
        _wait_for_some(base, job_id)
        worker_b = Proc(["worker", "--concurrency", "2"], env, tmp_path / "worker_b.log")
        time.sleep(1.0)  # worker B registered and idle: the job is locked to A
        stored = _stored(base, job_id)
        worker_a.kill()
        killed_at = time.time()
        stored.update({k: v for k, v in _stored(base, job_id).items() if v != "pending"})
        # the API only enqueues: progress now comes from worker B after A's heartbeat stops
        body = _wait_done(base, job_id, timeout=90)
    finally:
        for proc in (worker_a, worker_b, api):
            if proc is not None:
                proc.stop()
    _assert_exactly_once_and_no_resend(fake, body, stored, killed_at)
    assert "worker_started" in (tmp_path / "worker_b.log").read_text()
