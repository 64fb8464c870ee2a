"""One bad call never sinks a job (issue 11): per-paper errors, the failed-share rule, the
retry endpoint, honest cost on failure, retry-after never shortening backoff; indexer too."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from crystallise.api.app import create_app
from crystallise.llm.errors import ErrorCategory, LLMError
from crystallise.llm.retry import async_retry_with_backoff
from tests.conftest import make_settings
from tests.fake_openai import FakeOpenAIServer
from tests.indexer.test_indexer_api import wait_job
from tests.screening.test_screening_api import CRITERIA, papers, wait

FIELDS = [{"name": "sample_size", "description": "Participants", "data_type_primary": "number"}]


def records(n: int) -> list[dict[str, Any]]:
    return [
        {"ID": f"r{i}", "Title": f"Trial {i}", "Abstract": f"{100 + i} adults"} for i in range(n)
    ]


def screen(client: TestClient, ps: list[dict[str, Any]], **extra: Any) -> str:
    response = client.post(
        "/v1/screening/jobs",
        json={"papers": ps, "criteria": CRITERIA, "model": "gpt-4.1-mini"} | extra,
    )
    assert response.status_code == 200, response.text
    return str(response.json()["job_id"])


def _once_each(body: dict[str, Any], ids: list[str]) -> None:
    got = [r["id"] for r in body["results"]]
    assert sorted(got) == sorted(ids), "every paper exactly once"


def test_twenty_percent_faults_lose_nothing_and_retry_completes(
    client: TestClient, fake: FakeOpenAIServer
) -> None:
    fake.configure(fault_rate=0.2, fault_kinds=[500, 503, "timeout"], timeout_sleep_s=0.05)
    ps = papers(200)
    ids = [p["id"] for p in ps]
    for _ in range(3):
        body = wait(client, screen(client, ps), timeout=120)
        for _attempt in range(3):  # failed (a stage-wide call) or papers failed: resume
            if body["status"] == "failed":
                assert body["error_retryable"], body["error"]
            else:
                assert body["status"] == "completed"
                _once_each(body, ids)
                failed = [r for r in body["results"] if "error" in r]
                assert body["failed_count"] == len(failed)
                if not failed:
                    break
            again = client.post(f"/v1/screening/jobs/{body['job_id']}/retry")
            assert again.status_code == 200, again.text
            body = wait(client, body["job_id"], timeout=120)
        assert body["status"] == "completed" and body["failed_count"] == 0
        _once_each(body, ids)


def test_one_oversized_abstract_fails_only_its_paper(
    client: TestClient, fake: FakeOpenAIServer
) -> None:
    ps = papers(50)
    ps[7]["abstract"] = "word " * 400_000  # 2 MB, ~400k tokens: beyond gpt-5.4-nano's 272k
    body = wait(client, screen(client, ps, repetitions=2, model="gpt-5.4-nano"), timeout=120)
    assert body["status"] == "completed", body.get("error")
    _once_each(body, [p["id"] for p in ps])
    (bad,) = [r for r in body["results"] if "error" in r]
    assert bad["id"] == ps[7]["id"] and bad["error_category"] == "validation"
    assert "input tokens" in bad["error"]
    assert body["failed_count"] == 1 and body["errors"][0].startswith(f"Paper {ps[7]['id']}:")
    assert not any(ps[7]["abstract"][:50] in str(r["body"]) for r in fake.requests())


def test_retry_reruns_only_failed_papers_and_keeps_the_tally(
    client: TestClient, fake: FakeOpenAIServer
) -> None:
    ps = papers(12)
    fake.configure(fail_match="Trial 3 of drug X", fail_match_status=400)
    job_id = screen(client, ps, repetitions=1)
    first = wait(client, job_id)
    assert first["status"] == "completed" and first["failed_count"] == 1
    spent = first["usage"]["estimated_cost_usd"]
    assert spent > 0
    fake.reset()
    again = client.post(f"/v1/screening/jobs/{job_id}/retry")
    assert again.status_code == 200 and again.json()["status"] == "pending"
    body = wait(client, job_id)
    assert body["status"] == "completed" and body["failed_count"] == 0
    assert "errors" not in body
    paper_calls = [
        r for r in fake.requests() if "Title: Trial" in str(r["body"]["messages"][-1]["content"])
    ]
    assert {c["body"]["messages"][-1]["content"].split("\n")[1] for c in paper_calls} == {
        "Title: Trial 3 of drug X in adults"
    }
    assert body["usage"]["estimated_cost_usd"] > spent  # continues from what was spent
    assert client.post(f"/v1/screening/jobs/{job_id}/retry").status_code == 409
    assert client.post("/v1/screening/jobs/nope/retry").status_code == 404


def test_provider_down_fails_job_with_real_tally_then_retry_completes(
    client: TestClient, fake: FakeOpenAIServer
) -> None:
    ps = papers(40)
    fake.configure(fail_statuses=[None] * 10 + [500] * 2000)
    created = client.post(
        "/v1/screening/jobs", json={"papers": ps, "criteria": CRITERIA, "model": "gpt-4.1-mini"}
    )
    job_id = created.json()["job_id"]
    body = wait(client, job_id, timeout=60)
    assert body["status"] == "failed" and body["error_category"] == "transient"
    assert "papers failed" in body["error"]
    assert body["estimated_cost_usd"] == pytest.approx(body["usage"]["estimated_cost_usd"])
    assert any("final_score" in r for r in body["results"])  # work before it failed is kept
    fake.reset()
    assert client.post(f"/v1/screening/jobs/{job_id}/retry").status_code == 200
    body = wait(client, job_id, timeout=60)
    assert body["status"] == "completed" and body["failed_count"] == 0
    _once_each(body, [p["id"] for p in ps])


def test_cancelled_job_can_be_resumed(client: TestClient, fake: FakeOpenAIServer) -> None:
    # each stage waits on the one before (labelling, reasoning, clustering: ≥ 3 × 0.3 s), so
    # however wide the adaptive window grows, the cancel at 0.5 s lands mid-job
    fake.configure(latency_s=0.3)
    ps = papers(80)
    job_id = screen(client, ps, repetitions=1)
    time.sleep(0.5)
    client.post(f"/v1/screening/jobs/{job_id}/cancel")
    assert wait(client, job_id)["status"] == "cancelled"
    fake.configure(latency_s=0.0)
    assert client.post(f"/v1/screening/jobs/{job_id}/retry").status_code == 200
    body = wait(client, job_id, timeout=60)
    assert body["status"] == "completed"
    _once_each(body, [p["id"] for p in ps])


async def test_retry_after_hint_never_shortens_the_backoff() -> None:
    delays: list[float] = []
    calls = 0

    async def call() -> str:
        nonlocal calls
        calls += 1
        if calls <= 2:
            raise LLMError("slow down", ErrorCategory.RATE_LIMIT, retry_after_s=0.001)
        return "ok"

    result = await async_retry_with_backoff(
        call, delays=[0.05, 0.05], on_retry=lambda e, n, d: delays.append(d)
    )
    assert result == "ok" and delays == [0.05, 0.05]

    async def long_hint() -> str:
        raise LLMError("wait", ErrorCategory.RATE_LIMIT, retry_after_s=0.2)

    started = time.monotonic()
    with pytest.raises(LLMError):
        await async_retry_with_backoff(long_hint, delays=[0.01])
    assert time.monotonic() - started >= 0.2  # a longer hint lengthens it


def test_429_burst_with_short_hint_does_not_fail_the_job(
    tmp_path: Path, fake: FakeOpenAIServer
) -> None:
    settings = make_settings(tmp_path, fake, retry_delays=[0.3, 0.3, 0.3])
    fake.configure(fail_statuses=[429] * 6, retry_after_s=0.1)
    with TestClient(create_app(settings)) as client:
        body = wait(client, screen(client, papers(2), repetitions=1), timeout=60)
    assert body["status"] == "completed" and body["failed_count"] == 0
    assert body["duration_ms"] >= 900  # three full 0.3 s backoffs, not three 0.1 s hints


# ---- indexer: the same guarantees ---------------------------------------------------------
def test_indexer_job_wide_failures_fail_the_job(
    tmp_path: Path, client: TestClient, fake: FakeOpenAIServer
) -> None:
    fake.configure(valid_keys=["sk-good-0000000000"])
    bad = {"X-OpenAI-API-Key": "sk-bad-00000000000"}
    body = {"records": records(5), "fields": FIELDS}
    sync = client.post("/v1/indexer/run", json=body, headers=bad)
    assert sync.status_code == 401 and sync.json()["detail"]["error_code"] == "auth"
    job = client.post("/v1/indexer/jobs", json=body, headers=bad).json()["job_id"]
    result = wait_job(client, job)
    assert (result["status"], result["error_category"]) == ("failed", "auth")

    fake.configure(valid_keys=None, fail_statuses=[500] * 1000)
    down = wait_job(client, client.post("/v1/indexer/jobs", json=body).json()["job_id"])
    assert (down["status"], down["error_category"]) == ("failed", "transient")
    assert down["estimated_cost_usd"] == 0.0  # nothing was spent
    fake.reset()
    assert client.post(f"/v1/indexer/jobs/{down['job_id']}/retry").status_code == 200
    done = wait_job(client, down["job_id"])
    assert done["status"] == "completed" and len(done["partial_results"]) == 5


def test_indexer_one_bad_record_completes_job(client: TestClient, fake: FakeOpenAIServer) -> None:
    fake.configure(fail_match="Trial 2", fail_match_status=400)
    job = client.post("/v1/indexer/jobs", json={"records": records(6), "fields": FIELDS})
    body = wait_job(client, job.json()["job_id"])
    assert body["status"] == "completed"
    statuses = {r["ID"]: r["indexing_status"] for r in body["partial_results"]}
    assert statuses["r2"] == "error" and list(statuses.values()).count("ok") == 5


def test_provider_error_codes_classify_scope() -> None:
    too_long = LLMError("x", ErrorCategory.VALIDATION, item=True)
    assert not too_long.stops_job
    assert LLMError("x", ErrorCategory.AUTH).stops_job
    assert LLMError("x", ErrorCategory.RATE_LIMIT, job_wide=True).stops_job
    assert not LLMError("x", ErrorCategory.TRANSIENT).stops_job
