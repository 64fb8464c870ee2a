"""Many teams on one service (issue 24, items 1-2): each tenant sees only its own jobs on
every per-job route (404, existence not revealed), lists, active-job and Idempotency-Keys
are per tenant, admins see everything, a retry never moves a job onto the server's key, and
a tenant's monthly budget refuses a job that does not fit."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from crystallise.api.app import create_app
from tests.conftest import make_settings
from tests.fake_openai import FakeOpenAIServer

ALICE = {"X-API-Key": "k-alice"}
BOB = {"X-API-Key": "k-bob"}
ADMIN = {"X-API-Key": "k-admin"}
PAPERS = [{"id": f"p{i}", "title": f"Trial {i} of exercise", "abstract": "Older adults."}
          for i in range(6)]  # fmt: skip
TENANTS = {"alice": {"keys": ["k-alice"], "budget_usd": 0.0005}, "bob": {"keys": ["k-bob"]}}


@pytest.fixture
def app_client(tmp_path: Path, fake: FakeOpenAIServer) -> Iterator[TestClient]:
    settings = make_settings(
        tmp_path, fake, tenants=TENANTS, admin_api_keys="k-admin", api_keys="k-default"
    )
    with TestClient(create_app(settings)) as client:
        yield client


def _wait(client: TestClient, kind: str, job_id: str, headers: dict[str, str]) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        body = client.get(f"/v1/{kind}/jobs/{job_id}", headers=headers).json()
        if body.get("status") in ("completed", "failed", "cancelled"):
            return dict(body)
        time.sleep(0.05)
    raise AssertionError("job did not finish")


def _alices_jobs(client: TestClient) -> dict[str, str]:
    screening = {"papers": PAPERS, "mock": True, "project_id": 7}
    indexer = {
        "records": [{"ID": "r1", "Title": "A trial", "Abstract": "Text"}],
        "fields": [{"name": "design", "description": "Study design", "data_type_primary": "text"}],
        "mock": True,
        "project_id": 7,
    }
    jobs = {}
    for kind, body in (("screening", screening), ("indexer", indexer)):
        created = client.post(
            f"/v1/{kind}/jobs", json=body, headers={**ALICE, "Idempotency-Key": "same"}
        )
        assert created.status_code in (200, 201, 202), created.text
        jobs[kind] = created.json()["job_id"]
        _wait(client, kind, jobs[kind], ALICE)
    return jobs


def _all_routes(routes: list[Any], prefix: str = "") -> Iterator[tuple[str, APIRoute]]:
    """Every API route of the app with its full path (FastAPI includes routers lazily)."""
    for route in routes:
        if isinstance(route, APIRoute):
            yield prefix + route.path, route
        elif hasattr(route, "original_router"):
            inner = prefix + route.include_context.prefix
            yield from _all_routes(route.original_router.routes, inner)


def _per_job_routes(client: TestClient) -> list[tuple[str, str]]:
    found = []
    for path, route in _all_routes(client.app.routes):  # type: ignore[attr-defined]
        if "{job_id}" in path:
            found += [(method, path) for method in route.methods]
    return found


def test_every_per_job_route_is_404_for_another_tenant(app_client: TestClient) -> None:
    jobs = _alices_jobs(app_client)
    routes = _per_job_routes(app_client)
    assert len(routes) >= 18  # both kinds, /v1 and unprefixed: the walk sees them all
    for method, path in routes:
        kind = "indexer" if "/indexer/" in path else "screening"
        url = path.replace("{job_id}", jobs[kind])
        body = {
            "calibrate": {"labels": {"p0": 1}},
            "agreement": {"reviewers": {"ann": {"p0": 1}}, "threshold": 3},
            "update": {"papers": [{"id": "new-1", "title": "A new trial of yoga"}]},
        }.get(url.rsplit("/", 1)[-1], {})
        bob = app_client.request(method, url, headers=BOB, json=body if method == "POST" else None)
        assert bob.status_code == 404, (method, path, bob.status_code, bob.text[:200])
        assert jobs[kind] in bob.json()["detail"]  # the same answer as a job that never was
        alice = app_client.request(
            method, url, headers=ALICE, json=body if method == "POST" else None
        )
        assert alice.status_code != 404, (method, path, alice.text[:200])


def test_lists_active_job_and_idempotency_are_per_tenant(app_client: TestClient) -> None:
    jobs = _alices_jobs(app_client)
    for kind in ("screening", "indexer"):

        def listed(headers: dict[str, str], k: str = kind) -> set[str]:
            return {j["job_id"] for j in app_client.get(f"/v1/{k}/jobs", headers=headers).json()}

        assert jobs[kind] in listed(ALICE) and jobs[kind] not in listed(BOB)
        assert jobs[kind] in listed(ADMIN)
    running = {"papers": PAPERS, "mock": True, "project_id": 7}
    # Bob's Idempotency-Key "same" is his own: a new job, not Alice's (nor a 409)
    bob = app_client.post(
        "/v1/screening/jobs", json=running, headers={**BOB, "Idempotency-Key": "same"}
    )
    assert bob.status_code in (200, 201, 202) and bob.json()["job_id"] != jobs["screening"]
    again = app_client.post(
        "/v1/screening/jobs", json={"papers": PAPERS, "mock": True, "project_id": 7},
        headers={**ALICE, "Idempotency-Key": "same"},
    )  # fmt: skip
    assert again.json()["job_id"] == jobs["screening"]


def test_active_job_is_scoped(tmp_path: Path, fake: FakeOpenAIServer) -> None:
    settings = make_settings(tmp_path, fake, tenants=TENANTS, mock_delay_s=0.5)
    with TestClient(create_app(settings)) as client:
        body = {"papers": PAPERS, "mock": True, "project_id": 9}
        job_id = client.post("/v1/screening/jobs", json=body, headers=ALICE).json()["job_id"]
        mine = client.get("/v1/screening/active-job?project_id=9", headers=ALICE).json()
        assert mine and mine["job_id"] == job_id
        assert client.get("/v1/screening/active-job?project_id=9", headers=BOB).json() is None
        client.post(f"/v1/screening/jobs/{job_id}/cancel", headers=ALICE, json={})


def test_retry_never_moves_a_job_onto_the_server_key(
    app_client: TestClient, fake: FakeOpenAIServer
) -> None:
    fake.configure(fail_match="Trial 3 of", fail_match_status=400)
    own = {**BOB, "X-OpenAI-API-Key": "sk-bob-own-0123456789abcdef"}
    body = {"papers": PAPERS, "model": "gpt-4.1-mini", "repetitions": 1}
    job_id = app_client.post("/v1/screening/jobs", json=body, headers=own).json()["job_id"]
    final = _wait(app_client, "screening", job_id, BOB)
    assert [r for r in final["results"] if r.get("error")], final["status"]
    fake.configure(fail_match="")
    refused = app_client.post(f"/v1/screening/jobs/{job_id}/retry", headers=BOB, json={})
    assert refused.status_code == 400 and "X-OpenAI-API-Key" in refused.json()["detail"]
    retried = app_client.post(f"/v1/screening/jobs/{job_id}/retry", headers=own, json={})
    assert retried.status_code == 200, retried.text
    _wait(app_client, "screening", job_id, BOB)
    assert {r["key"] for r in fake.requests()} == {"sk-bob-own-0123456789abcdef"}


def test_budget_refuses_a_job_that_does_not_fit_and_usage_shows_it(
    app_client: TestClient,
) -> None:
    body = {"papers": PAPERS * 20, "model": "gpt-4.1", "repetitions": 5}
    body["papers"] = [{**p, "id": f"x{i}"} for i, p in enumerate(body["papers"])]
    refused = app_client.post("/v1/screening/jobs", json=body, headers=ALICE)
    assert refused.status_code == 402, refused.text
    detail = refused.json()["detail"]
    assert "budget" in detail and "$0.0005" in detail and "estimated at" in detail
    assert app_client.post("/v1/screening/jobs", json=body, headers=BOB).status_code == 200
    mock = app_client.post("/v1/screening/jobs", json={**body, "mock": True}, headers=ALICE)
    assert mock.status_code == 200  # mock jobs cost nothing
    own = {**ALICE, "X-OpenAI-API-Key": "sk-alice-own-0123456789abcdef"}
    assert app_client.post("/v1/screening/jobs", json=body, headers=own).status_code == 200
    mine = app_client.get("/v1/usage", headers=ALICE).json()
    assert [t["tenant"] for t in mine["tenants"]] == ["alice"]
    assert mine["tenants"][0]["budget_usd"] == 0.0005 and mine["tenants"][0]["jobs"] == 2
    everyone = {
        t["tenant"]: t for t in app_client.get("/v1/usage", headers=ADMIN).json()["tenants"]
    }
    assert {"alice", "bob"} <= set(everyone) and everyone["bob"]["reserved_usd"] + everyone["bob"][
        "spent_usd"
    ] > 0


def test_a_running_job_stops_at_its_tenants_budget(tmp_path: Path, fake: FakeOpenAIServer) -> None:
    """Answers far longer than estimated pass the budget mid-run: the job fails as 'budget',
    retryable, with what it screened kept."""
    papers = [{"id": f"p{i}", "title": f"Trial {i}", "abstract": "Text."} for i in range(120)]
    body = {"papers": papers, "model": "gpt-4.1", "repetitions": 1}
    probe = make_settings(tmp_path / "probe", fake)
    with TestClient(create_app(probe)) as client:
        estimate = client.post(
            "/v1/screening/estimate",
            json={"papers_count": 120, "model": "gpt-4.1", "repetitions": 1},
        ).json()["estimated_cost_usd"]
    tenants = {"alice": {"keys": ["k-alice"], "budget_usd": estimate * 1.5}}
    settings = make_settings(
        tmp_path, fake, tenants=tenants, worker_heartbeat_s=0.2, max_concurrent_requests=4
    )
    fake.configure(reasoning_words=(600, 800), latency_s=0.2)
    with TestClient(create_app(settings)) as client:
        job_id = client.post("/v1/screening/jobs", json=body, headers=ALICE).json()["job_id"]
        final = _wait(client, "screening", job_id, ALICE)
        usage = client.get("/v1/usage", headers=ALICE).json()["tenants"][0]
    assert final["status"] == "failed", final.get("error")
    assert final["error_category"] == "budget" and final["error_retryable"] is True
    assert "budget" in final["error"]
    assert [r for r in final["results"] if r.get("reasoning")]  # what was done is kept
    assert usage["spent_usd"] > estimate * 1.5
