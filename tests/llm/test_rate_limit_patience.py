"""A 429 is waited out, never charged to a paper (issue 23): 4 x 429 then an answer is one
successful call; continuous rate limiting fails only after CRYSTALLISE_RATE_LIMIT_PATIENCE_S,
as a job-wide, retryable rate_limit; insufficient_quota stops at once; a 429 storm in the
middle of a job leaves every paper screened."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from crystallise.api.app import create_app
from crystallise.llm.client import LLMClient
from crystallise.llm.errors import ErrorCategory, LLMError
from tests.conftest import make_settings
from tests.fake_openai import FakeOpenAIServer

MESSAGES = [{"role": "user", "content": "A randomised trial of aspirin."}]


def _finished(client: TestClient, job_id: str, timeout: float = 120) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = dict(client.get(f"/v1/screening/jobs/{job_id}").json())
        if job["status"] in ("completed", "failed", "cancelled"):
            return job
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} did not finish")


async def test_429s_do_not_use_up_retries(tmp_path: Path, fake: FakeOpenAIServer) -> None:
    llm = LLMClient(make_settings(tmp_path, fake, retry_delays=[0.01]))
    fake.configure(fail_statuses=[429] * 6)
    try:
        result = await llm.chat(MESSAGES, model="gpt-4.1")
    finally:
        await llm.aclose()
    assert result.content and fake.state.calls["chat"] == 7  # one retry configured, 6 waits


async def test_continuous_rate_limiting_fails_after_the_patience(
    tmp_path: Path, fake: FakeOpenAIServer
) -> None:
    llm = LLMClient(make_settings(tmp_path, fake, retry_delays=[0.02], rate_limit_patience_s=0.5))
    fake.configure(fail_statuses=[429] * 10_000)
    started = time.monotonic()
    with pytest.raises(LLMError) as info:
        await llm.chat(MESSAGES, model="gpt-4.1")
    await llm.aclose()
    assert time.monotonic() - started >= 0.5
    error = info.value
    assert error.category is ErrorCategory.RATE_LIMIT and error.retryable and error.stops_job
    assert "CRYSTALLISE_RATE_LIMIT_PATIENCE_S" in error.message


async def test_insufficient_quota_stops_at_once(tmp_path: Path, fake: FakeOpenAIServer) -> None:
    llm = LLMClient(make_settings(tmp_path, fake))
    fake.configure(fail_statuses=["quota"] * 5)
    with pytest.raises(LLMError) as info:
        await llm.chat(MESSAGES, model="gpt-4.1")
    await llm.aclose()
    assert info.value.stops_job and fake.state.calls["chat"] == 1


def test_a_429_storm_during_a_job_screens_every_paper(
    tmp_path: Path, fake: FakeOpenAIServer
) -> None:
    """200 consecutive 429s (20 in flight) once failed all papers and the job."""
    settings = make_settings(tmp_path, fake, retry_delays=[0.05, 0.1, 0.2])
    papers = [{"id": f"p{i}", "title": f"Trial {i}", "abstract": "Exercise."} for i in range(50)]
    fake.configure(fail_statuses=[None] * 20 + [429] * 200, latency_s=0.01)
    with TestClient(create_app(settings)) as client:
        body = {"papers": papers, "model": "gpt-4.1-mini", "repetitions": 2}
        job = _finished(client, client.post("/v1/screening/jobs", json=body).json()["job_id"])
    assert job["status"] == "completed", job.get("error")
    assert not [r for r in job["results"] if r.get("error")]
    assert fake.state.calls["chat"] > 220


def test_rate_limiting_past_the_patience_fails_the_job_keeping_its_results(
    tmp_path: Path, fake: FakeOpenAIServer
) -> None:
    settings = make_settings(tmp_path, fake, rate_limit_patience_s=1.0)
    papers = [{"id": f"p{i}", "title": f"Trial {i}", "abstract": "Exercise."} for i in range(30)]
    fake.configure(fail_statuses=[None] * 6 + [429] * 100_000)
    with TestClient(create_app(settings)) as client:
        body = {"papers": papers, "model": "gpt-4.1-mini"}
        job = _finished(client, client.post("/v1/screening/jobs", json=body).json()["job_id"])
    assert job["status"] == "failed"
    assert (job["error_category"], job["error_retryable"]) == ("rate_limit", True)
    assert "CRYSTALLISE_RATE_LIMIT_PATIENCE_S" in job["error"]
    assert any("final_score" in r for r in job["results"])  # work before the storm is kept
