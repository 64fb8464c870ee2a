"""AI Screening: mock and real lifecycles, bad input, failures, cancel, scale of clustering."""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest
from fastapi.testclient import TestClient

from crystallise.api.app import create_app
from crystallise.config.settings import Settings
from crystallise.llm.cost import estimate_cost
from tests.conftest import make_settings
from tests.fake_openai import FakeOpenAIServer

CRITERIA = [
    {"name": "Population", "type": "include", "value": "Adults"},
    {"name": "Design", "type": "include", "value": "Randomised controlled trials"},
    {"name": "Reviews", "type": "exclude", "value": "Systematic reviews and meta-analyses"},
]


def papers(n: int, prefix: str = "p") -> list[dict[str, Any]]:
    return [
        {
            "id": f"{prefix}{i}",
            "title": f"Trial {i} of drug X in adults",
            "abstract": f"Randomized trial of {100 + i} adults with hypertension; blood pressure fell by {i % 9} mmHg.",
        }
        for i in range(n)
    ]


def wait(client: TestClient, job_id: str, timeout: float = 30) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body = client.get(f"/v1/screening/jobs/{job_id}").json()
        if body["status"] in ("completed", "failed", "cancelled"):
            return body
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} did not finish: {body}")


def create(client: TestClient, **body: Any) -> str:
    payload = {
        "papers": papers(12),
        "criteria": CRITERIA,
        "questions": ["Does drug X lower blood pressure?"],
        **body,
    }
    response = client.post("/v1/screening/jobs", json=payload)
    assert response.status_code == 200, response.text
    assert response.json() == {
        "job_id": response.json()["job_id"],
        "status": "pending",
        "progress": 0.0,
        "stage": "",
    }
    uuid.UUID(response.json()["job_id"])
    return str(response.json()["job_id"])


# ---- mock mode -------------------------------------------------------------------------


def test_mock_lifecycle(client: TestClient, fake: FakeOpenAIServer) -> None:
    job_id = create(client, mock=True, project_id=42, repetitions=3)
    body = wait(client, job_id)
    assert (
        body["status"] == "completed" and body["progress"] == 1.0 and body["stage"] == "assignment"
    )
    assert len(body["results"]) == 12 and fake.state.calls["chat"] == 0
    cluster_ids = {c["cluster_id"] for c in body["clusters"]}
    for result in body["results"]:
        assert {
            "id",
            "final_score",
            "reasoning",
            "cluster_id",
            "score_1",
            "score_2",
            "score_3",
        } <= set(result)
        assert 1 <= result["final_score"] <= 5 and result["cluster_id"] in cluster_ids
    assert sum(c["count"] for c in body["clusters"]) == 12
    assert all({"cluster_id", "label", "count", "description"} <= set(c) for c in body["clusters"])
    assert (
        body["duration_ms"] >= 0
        and body["stage_timings"]
        and body["created_at"]
        and body["completed_at"]
    )

    again = wait(client, create(client, mock=True, repetitions=3))
    assert [r["scores"] for r in again["results"]] == [
        r["scores"] for r in body["results"]
    ]  # deterministic

    listed = client.get("/v1/screening/jobs", params={"limit": 1}).json()
    assert len(listed) == 1 and set(listed[0]) == {
        "job_id",
        "status",
        "progress",
        "stage",
        "papers_count",
        "model",
        "project_id",
        "duration_ms",
        "estimated_cost_usd",
        "created_at",
        "completed_at",
    }
    assert client.get("/v1/screening/active-job", params={"project_id": 42}).json() is None
    page = client.get(
        f"/v1/screening/jobs/{job_id}/results", params={"offset": 10, "limit": 5}
    ).json()
    assert page["total"] == 12 and [r["id"] for r in page["results"]] == ["p10", "p11"]


def test_active_job_while_running(client: TestClient) -> None:
    job_id = create(client, papers=papers(3000), mock=True, project_id=7)
    active = client.get("/v1/screening/active-job", params={"project_id": 7}).json()
    assert active is None or active["job_id"] == job_id  # may already have finished
    wait(client, job_id)
    assert client.get("/v1/screening/active-job", params={"project_id": 7}).json() is None
    assert client.get("/v1/screening/active-job").status_code == 400  # project_id required


def test_cost_ceiling_rejects_before_creating_in_mock_mode(client: TestClient) -> None:
    response = client.post(
        "/v1/screening/jobs",
        json={
            "papers": papers(50),
            "mock": True,
            "model": "gpt-4.1",
            "max_estimated_cost_usd": 0.01,
        },
    )
    assert response.status_code == 400
    assert (
        response.json()["detail"].startswith("Estimated cost $")
        and "exceeds max_estimated_cost_usd=$0.01" in response.json()["detail"]
    )
    assert client.get("/v1/screening/jobs").json() == []


def test_unknown_job_is_404(client: TestClient) -> None:
    assert client.get("/v1/screening/jobs/nope").status_code == 404
    assert client.post("/v1/screening/jobs/nope/cancel").status_code == 404


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ({}, "papers"),
        ({"papers": []}, "papers"),
        ({"papers": [{"title": "no id"}]}, "papers[0].id"),
        ({"papers": [{"id": "a"}, {"id": "a"}]}, "duplicate paper ids: a"),
        ({"papers": [{"id": "a"}], "repetitions": 0}, "repetitions"),
        ({"papers": [{"id": "a"}], "repetitions": 21}, "repetitions"),
        ({"papers": [{"id": "a"}], "clusters_type": "both"}, "clusters_type"),
        (
            {"papers": [{"id": "a"}], "criteria": [{"name": "P", "value": ["a"]}]},
            "criteria[0].value",
        ),
        ({"papers": [{"id": "a"}], "criteria": ["adults"]}, "criteria[0]"),
    ],
)
def test_bad_input_is_400(client: TestClient, body: dict[str, Any], needle: str) -> None:
    response = client.post("/v1/screening/jobs", json={**body, "mock": True})
    assert response.status_code == 400 and needle in str(response.json()["detail"])


def test_unknown_model_and_too_many_papers(tmp_path: object, fake: FakeOpenAIServer) -> None:
    with TestClient(create_app(make_settings(tmp_path, fake, max_papers_per_job=3))) as c:
        too_many = c.post("/v1/screening/jobs", json={"papers": papers(4), "mock": True})
        assert (
            too_many.status_code == 400
            and "CRYSTALLISE_MAX_PAPERS_PER_JOB=3" in too_many.json()["detail"]
        )
        unknown = c.post(
            "/v1/screening/jobs", json={"papers": papers(1), "model": "gpt-99", "mock": True}
        )
        assert (
            unknown.status_code == 400
            and "Unknown model 'gpt-99'" in unknown.json()["detail"]["message"]
        )


def test_estimate_endpoint(client: TestClient) -> None:
    body = client.post(
        "/v1/screening/estimate",
        json={"model": "gpt-5-nano", "papers_count": 500, "repetitions": 5, "criteria_count": 10},
    ).json()
    assert set(body) == {
        "estimated_input_tokens",
        "estimated_cached_input_tokens",
        "estimated_output_tokens",
        "estimated_cost_usd",
        "cost_per_paper_usd",
        "assumptions",
        "model",
        "papers_count",
        "repetitions",
        "confidence",
        "disclaimer",
    }
    # the shared system prompt (over 1,024 tokens) is priced at the cached rate after the
    # first call, and the estimate says so
    assert 0 < body["estimated_cached_input_tokens"] < body["estimated_input_tokens"]
    assert any("prompt cache" in a for a in body["assumptions"])
    assert body["cost_per_paper_usd"] == pytest.approx(body["estimated_cost_usd"] / 500, rel=1e-3)
    assert (body["model"], body["papers_count"], body["repetitions"], body["confidence"]) == (
        "gpt-5-nano",
        500,
        5,
        "approximate",
    )
    bigger = client.post(
        "/v1/screening/estimate",
        json={"model": "gpt-5-nano", "papers_count": 1000, "repetitions": 5, "criteria_count": 10},
    ).json()  # the same criteria: each adds its assessment to every reasoning answer
    assert bigger["estimated_cost_usd"] > body["estimated_cost_usd"] * 1.5
    assert client.post("/v1/screening/estimate", json={"papers_count": 0}).status_code == 400


def test_assignment_on_the_labelling_model_halves_a_large_estimate() -> None:
    from crystallise.screening.estimate import estimate_screening

    shape = {"papers_count": 10_000, "repetitions": 5, "criteria_count": 8}
    on_large = estimate_screening(
        model="gpt-5-nano", clustering_model="gpt-4.1", assignment_model="gpt-4.1", **shape
    )
    default = estimate_screening(
        model="gpt-5-nano", clustering_model="gpt-4.1", assignment_model="gpt-5-nano", **shape
    )
    assert default.estimated_cost_usd < 0.6 * on_large.estimated_cost_usd


# ---- real mode against the fake server ---------------------------------------------------


def _expected_cost(fake: FakeOpenAIServer) -> tuple[int, int, float]:
    inp = out = 0
    cost = 0.0
    for r in fake.requests():
        u = r["usage"]
        if u is None:
            continue
        inp += u["prompt_tokens"]
        out += u["completion_tokens"]
        cost += estimate_cost(
            r["body"]["model"], u["prompt_tokens"], u["completion_tokens"], u["cached_tokens"]
        )
    return inp, out, cost


def test_real_lifecycle_with_n(client: TestClient, fake: FakeOpenAIServer) -> None:
    fake.configure(latency_s=0.02)
    job_id = create(client, model="gpt-4.1-mini", repetitions=5, papers=papers(20))
    body = wait(client, job_id)
    assert body["status"] == "completed", body
    results = body["results"]
    assert sorted(r["id"] for r in results) == sorted(p["id"] for p in papers(20))
    for r in results:
        assert all(1 <= r[f"score_{i}"] <= 5 for i in range(1, 6)) and r["reasoning"]
        assert r["final_score"] == pytest.approx(sum(r["scores"]) / 5, abs=1e-3)
    ids = {c["cluster_id"] for c in body["clusters"]}
    assert all(r["cluster_id"] in ids and set(r["cluster_ids"]) <= ids for r in results)
    assert sum(c["count"] for c in body["clusters"]) >= 20
    inp, out, cost = _expected_cost(fake)
    assert (body["usage"]["input_tokens"], body["usage"]["output_tokens"]) == (inp, out)
    assert body["estimated_cost_usd"] == pytest.approx(cost, abs=1e-6)
    assert body["usage"]["cost_per_paper_usd"] == pytest.approx(cost / 20, abs=1e-6)
    models: dict[str, set[str]] = {}
    for request in fake.requests():
        fmt = request["body"].get("response_format") or {}
        models.setdefault(fmt.get("json_schema", {}).get("name"), set()).add(
            request["body"]["model"]
        )
    # themes on the clustering model; assignment (a call per 25 papers) on the labelling
    # model, the cheap path by default (CRYSTALLISE_ASSIGNMENT_MODEL overrides it)
    assert models["ThemesOutput"] == {"gpt-4.1"}
    assert models["AssignmentOutput"] == {"gpt-4.1-mini"}
    assert body["model_version"].startswith("gpt-4.1-mini-")
    assert body["usage"]["calls"] == fake.state.calls["chat"]
    assert set(body["stage_timings"]) >= {"labelling", "reasoning", "clustering", "assignment"}

    chats = fake.requests()
    labelling = [
        r["body"]
        for r in chats
        if r["body"]["response_format"]["json_schema"]["name"] == "LabelOutput"
    ]
    assert len(labelling) == 20 and all(b["n"] == 5 for b in labelling)  # repetitions from one call
    assert (
        len({b["messages"][0]["content"] for b in labelling}) == 1
    )  # byte-identical shared prefix
    assert all("Population: Adults" in b["messages"][0]["content"] for b in labelling)
    assert all(b["messages"][-1]["content"].startswith("<paper>") for b in labelling)  # paper last
    assert all(b["prompt_cache_key"] == f"screening-{job_id}" for b in labelling)
    assert body["usage"]["calls_per_paper"] < 2.5  # seed design: repetitions + 1 = 6


def test_real_without_n_support_uses_separate_calls(
    client: TestClient, fake: FakeOpenAIServer
) -> None:
    body = wait(client, create(client, model="gpt-5-nano", repetitions=3, papers=papers(4)))
    assert body["status"] == "completed", body
    labelling = [
        r["body"]
        for r in fake.requests()
        if r["body"]["response_format"]["json_schema"]["name"] == "LabelOutput"
    ]
    assert len(labelling) == 12 and all("n" not in b and "temperature" not in b for b in labelling)
    assert all(b["reasoning_effort"] == "minimal" for b in labelling)


def test_per_request_key_reaches_provider(client: TestClient, fake: FakeOpenAIServer) -> None:
    job_id = client.post(
        "/v1/screening/jobs",
        json={"papers": papers(2), "model": "gpt-4.1-mini"},
        headers={"X-OpenAI-API-Key": "sk-caller-000000000001"},
    ).json()["job_id"]
    assert wait(client, job_id)["status"] == "completed"
    assert {r["key"] for r in fake.requests()} == {"sk-caller-000000000001"}


@pytest.mark.parametrize(
    ("failure", "category", "retryable"),
    # 429: waited out for CRYSTALLISE_RATE_LIMIT_PATIENCE_S, tests/llm/test_rate_limit_patience.py
    [(401, "auth", False), (500, "transient", True)],
)
def test_provider_failure_mid_job_fails_job(
    client: TestClient, fake: FakeOpenAIServer, failure: int, category: str, retryable: bool
) -> None:
    fake.configure(fail_statuses=[None] * 6 + [failure] * 500)
    body = wait(client, create(client, model="gpt-4.1-mini", papers=papers(30)))
    assert body["status"] == "failed"
    assert (body["error_category"], body["error_retryable"]) == (category, retryable)
    assert body["error"]
    # a failed job's partial results stay readable (issue 11)
    assert any("final_score" in r for r in body["results"])  # scores stored before it failed
    page = client.get(f"/v1/screening/jobs/{body['job_id']}/results").json()
    assert any(
        r["status"] != "pending" for r in page["results"]
    )  # work done before the failure is kept


def test_cancel_stops_further_calls(client: TestClient, fake: FakeOpenAIServer) -> None:
    fake.configure(latency_s=0.2, rpm=1200)  # paced: the job takes ~20 s unless cancelled
    job_id = create(client, model="gpt-4.1-mini", papers=papers(200))
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:  # cancel once some papers are done, not at a set time
        page = client.get(f"/v1/screening/jobs/{job_id}/results", params={"limit": 200}).json()
        if any(r["status"] in ("reasoned", "done") for r in page["results"]):
            break
        time.sleep(0.05)
    cancelled = client.post(f"/v1/screening/jobs/{job_id}/cancel")
    assert cancelled.status_code == 200
    calls_at_cancel = fake.state.calls["chat"]
    body = wait(client, job_id)
    assert body["status"] == "cancelled"
    time.sleep(0.5)
    assert fake.state.calls["chat"] <= calls_at_cancel + 10  # only calls already in flight
    page = client.get(f"/v1/screening/jobs/{job_id}/results", params={"limit": 200}).json()
    finished = [r for r in page["results"] if r["status"] in ("reasoned", "done")]
    assert 0 < len(finished) < 200  # partial results kept, the rest never started


def test_results_are_checkpointed_while_running(client: TestClient, fake: FakeOpenAIServer) -> None:
    fake.configure(latency_s=0.1)
    job_id = create(client, model="gpt-4.1-mini", papers=papers(60))
    deadline = time.monotonic() + 20
    seen_partial = False
    while time.monotonic() < deadline:
        job = client.get(f"/v1/screening/jobs/{job_id}").json()
        page = client.get(f"/v1/screening/jobs/{job_id}/results", params={"limit": 100}).json()
        stored = [r for r in page["results"] if r["status"] != "pending"]
        if job["status"] == "running" and 0 < len(stored) < 60:
            seen_partial = True
            # progress writes are throttled (250 ms), item checkpoints are not (100 ms)
            assert job["stage"] in ("labelling", "reasoning") and 0 <= job["progress"] < 1
            break
        time.sleep(0.05)
    assert seen_partial
    wait(client, job_id)


def test_clustering_of_20000_papers_stays_within_context(
    tmp_path: object, fake: FakeOpenAIServer
) -> None:
    """Stages 3-4 for 20,000 reasoned papers against a provider with a 12k-token window."""
    import asyncio

    from crystallise.jobs.engine.runner import JobRunner
    from crystallise.jobs.submit import Submission, submit_screening
    from crystallise.screening.jobs import make_screening_job
    from crystallise.screening.schemas import ScreeningRequest
    from crystallise.services import Services

    settings: Settings = make_settings(tmp_path, fake, max_concurrent_requests=50)
    services = Services.build(settings)
    n = 20_000
    body = ScreeningRequest(
        papers=[{"id": f"p{i}", "title": "t", "abstract": "a"} for i in range(n)],  # type: ignore[misc]
        questions=["Q"],
        model="gpt-4.1-mini",
        repetitions=1,
    )
    job_id = asyncio.run(submit_screening(services, body, Submission(dispatch=False))).id
    reason = (
        "The abstract reports a randomised design in adults with hypertension and a blood pressure outcome, "
        * 2
    )
    services.jobs.save_items(
        job_id,
        [
            (
                i,
                "reasoned",
                {"id": f"p{i}", "final_score": 1 + i % 5, "reasoning": f"{reason} #{i}"},
            )
            for i in range(n)
        ],
    )
    fake.configure(context_limit=12_000)

    async def run() -> None:
        from crystallise.llm.client import LLMClient

        services.llm = LLMClient(settings)
        runner = JobRunner(
            services.store, {"screening": make_screening_job(services.settings, services.llm)}
        )
        runner.submit("screening", job_id)
        await runner.wait(job_id, timeout=240)
        await services.llm.aclose()

    asyncio.run(run())
    row = services.jobs.get_job("screening", job_id)
    assert row is not None and row.status == "completed", row.error if row else None
    assert fake.state.statuses.get(400, 0) == 0
    assert fake.state.max_prompt_tokens < 12_000
    assigned = [i.result for i in services.jobs.iter_items(job_id)]
    assert len(assigned) == n and all(r and r["cluster_id"] is not None for r in assigned)
    assert sum(c["count"] for c in row.clusters) >= n  # type: ignore[union-attr]
    assert fake.state.calls["chat"] < n / 20  # batched assignment, not one call per paper


def test_criteria_in_either_shape_are_one_type(client: TestClient) -> None:
    """The reference's {name, type, value} and the helpers' {category, text, criterion_type}
    make the same criteria; numbers are read as text (issue 28: one criterion type)."""
    from crystallise.screening.spec import ScreeningJobSpec

    shapes = [
        [{"name": "Age", "type": "include", "value": 18}, {"name": "Design", "type": "exclude"}],
        [
            {"category": "Age", "text": "18", "criterion_type": "include"},
            {"category": "Design", "criterion_type": "exclusion"},
        ],
    ]
    held = []
    for criteria in shapes:
        job_id = create(client, criteria=criteria, mock=True)
        row = client.app.state.services.jobs.get_job("screening", job_id)  # type: ignore[attr-defined]
        held.append([(c.id, c.kind, c.text, c.name) for c in row.spec(ScreeningJobSpec).criteria])
    assert (
        held[0]
        == held[1]
        == [("I1", "include", "Age: 18", "Age"), ("E1", "exclude", "Design", "Design")]
    )


def test_mock_scores_follow_content() -> None:
    from crystallise.screening.criteria import CriterionInput, normalise_criteria
    from crystallise.screening.mock import mock_scores

    criteria = normalise_criteria(
        [
            CriterionInput(name="Population", type="include", value="adults with hypertension"),
            CriterionInput(name="Design", type="exclude", value="systematic review"),
        ]
    )
    fits = {
        "id": "a",
        "title": "Trial in adults with hypertension",
        "abstract": "Adults with hypertension were randomised.",
    }
    off = {
        "id": "b",
        "title": "A systematic review of dental care",
        "abstract": "We review children's teeth.",
    }
    assert sum(mock_scores(fits, 5, criteria)) > sum(mock_scores(off, 5, criteria))
    assert mock_scores(fits, 5, criteria) == mock_scores(fits, 5, criteria)
