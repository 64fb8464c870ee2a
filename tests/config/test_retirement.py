"""Model retirement (issue 17): with the clock on either side of a shutdown date, requests,
service configs, estimates, readiness and queued jobs run on the successor or are refused."""

from __future__ import annotations

import time
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from crystallise.api.app import create_app
from crystallise.config.model_capabilities import live_successor, resolve_model
from crystallise.llm.errors import ErrorCategory, LLMError
from crystallise.screening.estimate import estimate_screening
from tests.conftest import make_settings
from tests.fake_openai import FakeOpenAIServer
from tests.indexer.test_indexer_api import wait_job
from tests.screening.test_screening_api import CRITERIA, papers, wait

BEFORE = date(2026, 12, 10)
AFTER = date(2026, 12, 12)  # gpt-5-nano and gpt-5-mini shut down on 2026-12-11
RECORD = {"ID": "r1", "Title": "RCT of drug X", "Abstract": "150 adults were randomised."}
FIELDS = [{"name": "sample_size", "description": "Participants", "data_type_primary": "number"}]


def app_client(tmp_path: Path, fake: FakeOpenAIServer, **overrides: Any) -> TestClient:
    app = create_app(make_settings(tmp_path, fake, **overrides))
    return TestClient(app)


def models_sent(fake: FakeOpenAIServer) -> set[str]:
    return {r["body"]["model"] for r in fake.requests() if r["kind"] == "chat"}


# ---- the rule itself -------------------------------------------------------------------
def test_resolution_on_both_sides_of_the_date() -> None:
    assert resolve_model(None, "gpt-5-nano", today=BEFORE).model == "gpt-5-nano"
    after = resolve_model(None, "gpt-5-nano", today=AFTER)
    assert (after.model, after.requested, after.explicit) == ("gpt-5.4-nano", "gpt-5-nano", False)
    assert after.warning and "gpt-5.4-nano" in after.warning and "2026-12-11" in after.warning
    # the successor is itself retired later: follow the chain to a live model
    assert live_successor("gpt-5-nano", date(2027, 4, 2)) == "gpt-5.4-mini"
    with pytest.raises(LLMError) as info:  # named explicitly: refused, successor named
        resolve_model("gpt-5-nano", "gpt-4.1", today=AFTER)
    assert info.value.category is ErrorCategory.VALIDATION
    assert "gpt-5.4-nano" in info.value.message
    assert "CRYSTALLISE_RETIRED_MODEL_FALLBACK_EXPLICIT" in info.value.message
    explicit = resolve_model("gpt-5-nano", "gpt-4.1", today=AFTER, explicit_fallback=True)
    assert explicit.model == "gpt-5.4-nano" and explicit.warning
    with pytest.raises(LLMError) as info:
        resolve_model(None, "gpt-5-nano", today=AFTER, policy="reject")
    assert "CRYSTALLISE_RETIRED_MODEL_POLICY=reject" in info.value.message
    assert "gpt-5.4-nano" in info.value.message


# ---- every README flow after the date, default policy ---------------------------------
def test_default_flows_run_on_successors_after_shutdown(
    tmp_path: Path, fake: FakeOpenAIServer
) -> None:
    with app_client(tmp_path, fake, today=AFTER) as client:
        job = client.post(
            "/v1/screening/jobs",
            json={"papers": papers(6), "criteria": CRITERIA, "repetitions": 2},
        )
        assert job.status_code == 200, job.text
        body = wait(client, job.json()["job_id"])
        assert body["status"] == "completed", body
        assert body["model"] == "gpt-5.4-nano"
        assert body["model_version"].startswith("gpt-5.4-nano")
        assert any("gpt-5-nano" in w and "gpt-5.4-nano" in w for w in body["warnings"])
        assert "gpt-5-nano" not in models_sent(fake) and "gpt-5.4-nano" in models_sent(fake)

        fake.reset()
        analysed = client.post(
            "/v1/criteria/analyze-question", json={"research_question": "Does X help Y?"}
        )
        assert analysed.status_code == 200, analysed.text
        assert analysed.headers["x-crystallise-model"] == "gpt-5.4-mini"
        assert analysed.headers["x-crystallise-model-version"].startswith("gpt-5.4-mini")
        assert "gpt-5-mini" in analysed.headers["x-crystallise-warning"]
        assert models_sent(fake) == {"gpt-5.4-mini"}

        run = client.post("/v1/indexer/run", json={"records": [RECORD], "fields": FIELDS})
        assert run.status_code == 200, run.text
        assert run.json()["model"] == "gpt-5.4-mini" and run.json()["warnings"]
        assert run.json()["model_version"].startswith("gpt-5.4-mini")

        ijob = client.post("/v1/indexer/jobs", json={"records": [RECORD], "fields": FIELDS})
        assert ijob.status_code == 200, ijob.text
        ibody = wait_job(client, ijob.json()["job_id"])
        assert ibody["status"] == "completed" and ibody["model"] == "gpt-5.4-mini"
        assert ibody["warnings"]

        ready = client.get("/health/ready").json()
        assert ready["status"] == "ready", ready  # retired defaults are covered by successors
        assert any("successor 'gpt-5.4-nano'" in w for w in ready["warnings"])


def test_estimate_and_cost_ceiling_price_the_successor(
    tmp_path: Path, fake: FakeOpenAIServer
) -> None:
    request = {"papers_count": 10_000, "repetitions": 5, "criteria_count": 8}
    with app_client(tmp_path, fake, today=BEFORE) as client:
        before = client.post("/v1/screening/estimate", json=request).json()
    with app_client(tmp_path, fake, today=AFTER) as client:
        after = client.post("/v1/screening/estimate", json=request).json()
        assert before["model"] == "gpt-5-nano" and after["model"] == "gpt-5.4-nano"
        assert after["warnings"] and not before.get("warnings")
        expected = estimate_screening(
            model="gpt-5.4-nano",
            clustering_model="gpt-4.1",
            assignment_model="gpt-5.4-nano",  # the labelling model, as by default
            **request,
        ).estimated_cost_usd
        assert after["estimated_cost_usd"] == pytest.approx(expected)
        assert after["estimated_cost_usd"] > before["estimated_cost_usd"]
        # a budget that covered the old model does not cover the one that will run
        small = {"papers": papers(3), "criteria": CRITERIA}
        small_before = estimate_screening(
            model="gpt-5-nano",
            clustering_model="gpt-4.1",
            assignment_model="gpt-5-nano",
            papers_count=3,
            repetitions=5,
            criteria_count=3,
        ).estimated_cost_usd
        refused = client.post(
            "/v1/screening/jobs", json={**small, "max_estimated_cost_usd": small_before * 1.01}
        )
        assert refused.status_code == 400, refused.text
        assert "max_estimated_cost_usd" in refused.text
        ind = client.post("/v1/indexer/estimate", json={"fields": FIELDS, "record_count": 100})
        assert ind.json()["model"] == "gpt-5.4-mini" and ind.json()["warnings"]


def test_explicit_retired_model_is_refused_unless_allowed(
    tmp_path: Path, fake: FakeOpenAIServer
) -> None:
    job = {"papers": papers(2), "criteria": CRITERIA, "model": "gpt-5-nano"}
    with app_client(tmp_path, fake, today=AFTER) as client:
        refused = client.post("/v1/screening/jobs", json=job)
        assert refused.status_code == 400
        assert refused.json()["detail"]["error_code"] == "validation"
        assert "gpt-5.4-nano" in refused.json()["detail"]["message"]
        est = client.post("/v1/screening/estimate", json={"papers_count": 5, "model": "gpt-5-nano"})
        assert est.status_code == 400
        picos = client.post(
            "/v1/criteria/picos", json={"project_description": "RCTs", "model": "gpt-5-mini"}
        )
        assert picos.status_code == 400 and "gpt-5.4-mini" in picos.text
        assert fake.state.calls["chat"] == 0
    with app_client(tmp_path, fake, today=AFTER, retired_model_fallback_explicit=True) as client:
        created = client.post("/v1/screening/jobs", json=job)
        assert created.status_code == 200
        body = wait(client, created.json()["job_id"])
        assert body["status"] == "completed" and body["model"] == "gpt-5.4-nano"
        assert body["warnings"]


def test_reject_policy_answers_400_and_degrades_readiness(
    tmp_path: Path, fake: FakeOpenAIServer
) -> None:
    with app_client(tmp_path, fake, today=AFTER, retired_model_policy="reject") as client:
        job = client.post("/v1/screening/jobs", json={"papers": papers(2), "criteria": CRITERIA})
        assert job.status_code == 400
        assert "CRYSTALLISE_RETIRED_MODEL_POLICY=reject" in job.json()["detail"]["message"]
        q = client.post("/v1/criteria/analyze-question", json={"research_question": "X?"})
        assert q.status_code == 400 and "gpt-5.4-mini" in q.text
        ready = client.get("/health/ready")
        assert ready.status_code == 503 and ready.json()["status"] == "degraded"
        # a service config that names a current model fixes it
        put = client.put("/v1/config/services/screening", json={"model": "gpt-5.4-nano"})
        assert put.status_code == 200
        ok = client.post("/v1/screening/jobs", json={"papers": papers(2), "criteria": CRITERIA})
        assert ok.status_code == 200
    with app_client(tmp_path, fake, today=BEFORE, retired_model_policy="reject") as client:
        assert client.get("/v1/screening/jobs").status_code == 200
        q = client.post("/v1/criteria/analyze-question", json={"research_question": "X?"})
        assert q.status_code == 200 and q.headers["x-crystallise-model"] == "gpt-5-mini"
        assert "x-crystallise-warning" not in q.headers


def test_service_config_naming_a_retired_model_runs_on_successor(
    tmp_path: Path, fake: FakeOpenAIServer
) -> None:
    with app_client(tmp_path, fake, today=AFTER) as client:
        put = client.put("/v1/config/services/criteria", json={"model": "gpt-5-mini"})
        assert put.status_code == 200
        out = client.post("/v1/criteria/generate", json={"project_description": "RCTs of X"})
        assert out.status_code == 200, out.text
        assert out.headers["x-crystallise-model"] == "gpt-5.4-mini"
        assert models_sent(fake) == {"gpt-5.4-mini"}


@pytest.mark.parametrize("policy", ["successor", "reject"])
def test_job_queued_before_shutdown_and_run_after(
    tmp_path: Path, fake: FakeOpenAIServer, policy: str
) -> None:
    """Created (and partly run) on 2026-12-10; the process stops; it resumes on 2026-12-12."""
    fake.configure(latency_s=5.0)
    with app_client(tmp_path, fake, today=BEFORE) as client:
        created = client.post(
            "/v1/screening/jobs",
            json={"papers": papers(4), "criteria": CRITERIA, "repetitions": 1},
        )
        job_id = created.json()["job_id"]
        deadline = time.monotonic() + 10
        while fake.state.calls["chat"] == 0 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert client.get(f"/v1/screening/jobs/{job_id}").json()["model"] == "gpt-5-nano"
    fake.reset()
    with app_client(tmp_path, fake, today=AFTER, retired_model_policy=policy) as client:
        body = wait(client, job_id)
    if policy == "successor":
        assert body["status"] == "completed", body
        assert body["model"] == "gpt-5.4-nano" and body["warnings"]
        assert len(body["results"]) == 4
        assert models_sent(fake) <= {"gpt-5.4-nano", "gpt-4.1"}
    else:
        assert body["status"] == "failed" and body["error_category"] == "validation"
        assert "gpt-5.4-nano" in body["error"]
        assert fake.state.calls["chat"] == 0
