"""Operator's view (issue 24, item 3): /metrics after a real job run by `crystallise serve`
in its job process shows calls, tokens and cost for the tenant that ran it; only an admin key
may scrape once keys are configured."""

from __future__ import annotations

import re
import time
from pathlib import Path

import httpx

from tests.durability.test_crash_recovery import Proc, _env
from tests.durability.test_job_process import wait_healthy
from tests.fake_openai import FakeOpenAIServer, free_port

TENANTS = '{"alice": {"keys": ["k-alice"]}, "bob": {"keys": ["k-bob"]}}'


def _value(text: str, name: str, **labels: str) -> float:
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(name + "{"):
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', line.split("}")[0]))
        if all(found.get(k) == v for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


def test_metrics_after_a_real_job(tmp_path: Path, fake: FakeOpenAIServer) -> None:
    env = _env(tmp_path, fake, CRYSTALLISE_TENANTS=TENANTS, CRYSTALLISE_ADMIN_API_KEYS="k-admin")
    env.pop("CRYSTALLISE_JOB_QUEUE", None)  # the default: a job process beside the API
    port = free_port()
    proc = Proc(["serve", "--port", str(port)], env, tmp_path / "serve.log")
    base = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(base, tmp_path / "serve.log")
        papers = [{"id": f"p{i}", "title": f"Trial {i}", "abstract": "Text."} for i in range(8)]
        body = {"papers": papers, "model": "gpt-4.1-mini", "repetitions": 2}
        alice = {"X-API-Key": "k-alice"}
        job_id = httpx.post(f"{base}/v1/screening/jobs", json=body, headers=alice).json()["job_id"]
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            job = httpx.get(f"{base}/v1/screening/jobs/{job_id}", headers=alice).json()
            if job["status"] in ("completed", "failed"):
                break
            time.sleep(0.2)
        assert job["status"] == "completed"
        assert httpx.get(f"{base}/metrics").status_code == 401
        assert httpx.get(f"{base}/metrics", headers=alice).status_code == 403
        scrape = httpx.get(f"{base}/metrics", headers={"X-API-Key": "k-admin"})
    finally:
        proc.stop()
    assert scrape.status_code == 200 and scrape.headers["content-type"].startswith("text/plain")
    text = scrape.text
    assert _value(text, "crystallise_model_calls_total", model="gpt-4.1-mini", status="200") >= 16
    assert _value(text, "crystallise_model_tokens_total", model="gpt-4.1-mini", kind="output") > 0
    assert _value(text, "crystallise_cost_usd_total", tenant="alice") > 0
    assert _value(text, "crystallise_cost_usd_total", tenant="bob") == 0
    assert (
        _value(text, "crystallise_jobs_total", kind="screening", status="completed", tenant="alice")
        == 1
    )
    assert _value(text, "crystallise_model_call_seconds_count", model="gpt-4.1-mini") >= 16
    assert "crystallise_queue_depth" in text and "crystallise_jobs_in_progress" in text
