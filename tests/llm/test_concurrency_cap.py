"""CRYSTALLISE_MAX_CONCURRENT_REQUESTS holds under adaptive pacing (issue 24, item 6): a
local server with 4 slots saw 30 concurrent calls once adaptive mode became the default."""

from __future__ import annotations

import time
from pathlib import Path

from crystallise.config.settings import Settings
from crystallise.llm.ratelimit import ProviderLimiter
from tests.durability.test_crash_recovery import Proc, _env, _http
from tests.durability.test_job_process import wait_healthy
from tests.fake_openai import FakeOpenAIServer, free_port


def test_the_setting_is_the_adaptive_ceiling_only_when_set(
    monkeypatch: object,
) -> None:
    assert Settings(_env_file=None).concurrency_ceiling == 256  # type: ignore[call-arg]
    capped = Settings(_env_file=None, max_concurrent_requests=4)  # type: ignore[call-arg]
    assert capped.adaptive_concurrency and capped.concurrency_ceiling == 4
    limiter = ProviderLimiter(4, adaptive=True, max_concurrency=capped.concurrency_ceiling)
    for _ in range(100):
        limiter.waiting = 10
        limiter.observe({}, 200)
    assert limiter.limit == 4


def test_a_job_never_exceeds_the_cap_through_serve(tmp_path: Path, fake: FakeOpenAIServer) -> None:
    fake.configure(latency_s=0.05, ratelimit_headers=False)
    env = _env(tmp_path, fake)  # CRYSTALLISE_MAX_CONCURRENT_REQUESTS=4, adaptive by default
    env.pop("CRYSTALLISE_JOB_QUEUE", None)
    port = free_port()
    proc = Proc(["serve", "--port", str(port)], env, tmp_path / "serve.log")
    base = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(base, tmp_path / "serve.log")
        papers = [{"id": f"p{i}", "title": f"Trial {i}", "abstract": "Text."} for i in range(60)]
        body = {"papers": papers, "model": "gpt-4.1-mini", "repetitions": 3}
        job_id = _http("POST", f"{base}/v1/screening/jobs", body)["job_id"]
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            job = _http("GET", f"{base}/v1/screening/jobs/{job_id}")
            if job["status"] in ("completed", "failed", "cancelled"):
                break
            time.sleep(0.2)
    finally:
        proc.stop()
    assert job["status"] == "completed"
    assert 1 < fake.state.stats()["peak_concurrency"] <= 4, fake.state.stats()
