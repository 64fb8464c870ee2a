"""Screening with "batch": true: labelling and reasoning through the fake's Files + Batches
endpoints (submit, poll, restart, cancel, partial failures inside a batch), priced at half."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from crystallise.api.app import create_app
from crystallise.config.settings import Settings
from crystallise.llm.batches import MAX_REQUESTS_PER_BATCH, request_line, split_lines
from crystallise.llm.cost import estimate_cost
from crystallise.screening.provider_batch import MAX_ROUNDS
from tests.conftest import make_settings
from tests.fake_openai import FakeOpenAIServer
from tests.screening.test_screening_api import create, papers, wait


@pytest.fixture
def batch_settings(tmp_path: object, fake: FakeOpenAIServer) -> Settings:
    return make_settings(tmp_path, fake, batch_poll_s=0.05)


@pytest.fixture
def bclient(batch_settings: Settings, fake: FakeOpenAIServer) -> Iterator[TestClient]:
    with TestClient(create_app(batch_settings)) as test_client:
        yield test_client


def _poll_until(client: TestClient, job_id: str, check: Any, timeout: float = 20) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body = client.get(f"/v1/screening/jobs/{job_id}").json()
        if check(body):
            return body
        time.sleep(0.02)
    raise AssertionError(f"condition not met: {body}")


def _label_chat_calls(fake: FakeOpenAIServer) -> int:
    return sum("LabelOutput" in str(r["body"].get("response_format")) for r in fake.requests())


def test_batch_job_runs_labelling_and_reasoning_as_batches(
    bclient: TestClient, fake: FakeOpenAIServer
) -> None:
    fake.configure(batch_delay_s=0.3)
    job_id = create(bclient, model="gpt-5-nano", repetitions=3, batch=True)
    waiting = _poll_until(bclient, job_id, lambda b: b["stage"] == "batch:labelling")
    assert waiting["status"] == "running"
    (first,) = waiting["provider_batches"]
    assert first["id"].startswith("batch_") and first["stage"] == "labelling"
    body = wait(bclient, job_id)
    assert body["status"] == "completed", body
    # every labelling and reasoning request went in a batch; only themes/assignment live
    assert fake.state.calls["batch_line"] == 12 * 3 + 12
    assert _label_chat_calls(fake) == 0
    assert fake.state.calls["batches"] == 2
    assert [b["stage"] for b in body["provider_batches"]] == ["labelling", "reasoning"]
    assert all(b["status"] == "completed" for b in body["provider_batches"])
    for result in body["results"]:
        assert len(result["scores"]) == 3 and result["reasoning"] and "error" not in result
    # batch usage is tallied apart and priced at half
    job = bclient.app.state.services.jobs.get_job("screening", job_id)  # type: ignore[attr-defined]
    row = job.usage["tally"]["by_model"]["gpt-5-nano@batch"]
    full = estimate_cost(
        "gpt-5-nano", row["input_tokens"], row["output_tokens"], row["cached_tokens"]
    )
    assert estimate_cost(
        "gpt-5-nano@batch", row["input_tokens"], row["output_tokens"]
    ) == pytest.approx(estimate_cost("gpt-5-nano", row["input_tokens"], row["output_tokens"]) / 2)
    assert full > 0 and body["usage"]["cost_per_paper_usd"] > 0
    methods = bclient.get(f"/v1/screening/jobs/{job_id}/provenance").json()["methods"]
    assert "through the provider's Batch API" in methods


def test_partial_failure_inside_a_batch_is_retried_then_given_up(
    bclient: TestClient, fake: FakeOpenAIServer
) -> None:
    """One paper's requests fail inside every batch: it is sent again in the next rounds,
    then ends with an item error; the others complete."""
    marker = "7Q7Q7Q7"
    batch = papers(6)
    batch[2]["abstract"] += f" {marker}"
    fake.configure(fail_match=marker, fail_match_status=400)
    job_id = create(bclient, papers=batch, repetitions=2, batch=True)
    body = wait(bclient, job_id)
    assert body["status"] == "completed", body
    assert body["failed_count"] == 1
    (failed,) = [r for r in body["results"] if "error" in r]
    assert failed["id"] == "p2" and "batches" in failed["error"] and "400" in failed["error"]
    labelling = [b for b in body["provider_batches"] if b["stage"] == "labelling"]
    assert len(labelling) == MAX_ROUNDS  # round 1: all papers; rounds 2-3: the failing one
    assert [b["total"] for b in labelling] == [12, 2, 2]


def test_cancel_cancels_the_provider_batch(bclient: TestClient, fake: FakeOpenAIServer) -> None:
    fake.configure(batch_delay_s=60)
    job_id = create(bclient, batch=True, repetitions=2)
    _poll_until(bclient, job_id, lambda b: bool(b.get("provider_batches")))
    assert bclient.post(f"/v1/screening/jobs/{job_id}/cancel").status_code == 200
    body = wait(bclient, job_id)
    assert body["status"] == "cancelled"
    assert fake.state.calls["batches_cancel"] == 1
    (batch,) = fake.state.batches.values()
    assert batch["status"] in ("cancelling", "cancelled")
    # resumed: the cancelled batch is not used again and does not use up a round
    fake.configure(batch_delay_s=0)
    assert bclient.post(f"/v1/screening/jobs/{job_id}/retry").status_code == 200
    body = wait(bclient, job_id)
    assert body["status"] == "completed", body
    assert [(b["stage"], b["round"], b["status"]) for b in body["provider_batches"]] == [
        ("labelling", 1, "cancelled"),
        ("labelling", 2, "completed"),
        ("reasoning", 1, "completed"),
    ]
    assert all("error" not in r for r in body["results"])


def test_a_restarted_service_polls_the_batch_it_started(
    batch_settings: Settings, fake: FakeOpenAIServer
) -> None:
    """The batch id is stored before the wait: after a restart the job picks up the same
    batch (no second labelling batch, nothing paid twice) and completes."""
    fake.configure(batch_delay_s=1.5)
    with TestClient(create_app(batch_settings)) as first:
        job_id = create(first, batch=True, repetitions=2)
        _poll_until(first, job_id, lambda b: bool(b.get("provider_batches")))
    assert fake.state.calls["batches"] == 1
    with TestClient(create_app(batch_settings)) as second:
        body = wait(second, job_id, timeout=30)
    assert body["status"] == "completed", body
    assert fake.state.calls["batches"] == 2  # the labelling batch once, then reasoning
    assert fake.state.calls["batch_line"] == 12 * 2 + 12
    assert all("error" not in r for r in body["results"])


def test_a_server_without_a_batch_api_fails_the_job_clearly(
    bclient: TestClient, fake: FakeOpenAIServer
) -> None:
    fake.configure(batch_api=False)
    job_id = create(bclient, batch=True, repetitions=2)
    body = wait(bclient, job_id)
    assert body["status"] == "failed", body
    assert "Batch API" in body["error"] and "without" in body["error"]
    assert body["error_category"] == "validation" and body["error_retryable"] is False
    assert fake.state.calls["chat"] == 0  # nothing was sent live instead


def test_distribution_scoring_in_a_batch(bclient: TestClient, fake: FakeOpenAIServer) -> None:
    job_id = create(bclient, model="gpt-4.1-mini", scoring="distribution", batch=True)
    body = wait(bclient, job_id)
    assert body["status"] == "completed", body
    assert fake.state.calls["batch_line"] == 12 + 12  # one labelling line per paper
    assert {r["scoring"] for r in body["results"]} == {"distribution"}


def test_batch_estimate_is_half_of_the_model_stages(client: TestClient) -> None:
    base = {"papers_count": 10_000, "repetitions": 5, "criteria_count": 8}
    live = client.post("/v1/screening/estimate", json=base).json()
    batch = client.post("/v1/screening/estimate", json={**base, "batch": True}).json()
    assert (
        0.45 * live["estimated_cost_usd"]
        < batch["estimated_cost_usd"]
        < 0.6 * live["estimated_cost_usd"]
    )
    assert any("Batch API" in a for a in batch["assumptions"])
    bad = client.post("/v1/screening/estimate", json={**base, "batch": "yes"})
    assert bad.status_code in (400, 422) and "batch" in bad.text


def test_input_files_are_split_at_the_limits() -> None:
    lines = [
        request_line(f"labelling-{i}-0", {"model": "m"}) for i in range(MAX_REQUESTS_PER_BATCH + 5)
    ]
    parts = split_lines(lines)
    assert [len(p) for p in parts] == [MAX_REQUESTS_PER_BATCH, 5]
