"""Living reviews (issue 26, item 1): a job reuses the stored results of papers screened
before under the same setup and tenant, pays only for the new ones, and says so."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text

from crystallise.api.app import create_app
from tests.conftest import make_settings
from tests.fake_openai import FakeOpenAIServer

CRITERIA = [{"name": "Design", "type": "include", "value": "Randomised trials"}]
ALICE, BOB = {"X-API-Key": "k-alice"}, {"X-API-Key": "k-bob"}


def _papers(start: int, end: int) -> list[dict[str, str]]:
    return [
        {"id": f"p{i}", "title": f"Trial {i} of exercise", "abstract": f"Adults {i}."}
        for i in range(start, end)
    ]


def _run(client: TestClient, headers: dict[str, str], **body: Any) -> dict[str, Any]:
    request = {"criteria": CRITERIA, "model": "gpt-4.1-mini", "repetitions": 2, **body}
    created = client.post("/v1/screening/jobs", json=request, headers=headers)
    assert created.status_code == 200, created.text
    job_id = created.json()["job_id"]
    deadline = time.monotonic() + 60
    while (job := client.get(f"/v1/screening/jobs/{job_id}", headers=headers).json())[
        "status"
    ] not in ("completed", "failed"):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    return dict(job)


def test_an_updated_search_pays_only_for_its_new_records(
    tmp_path: Path, fake: FakeOpenAIServer
) -> None:
    tenants = {"alice": {"keys": ["k-alice"]}, "bob": {"keys": ["k-bob"]}}
    with TestClient(create_app(make_settings(tmp_path, fake, tenants=tenants))) as client:
        first = _run(client, ALICE, papers=_papers(0, 10))
        calls_first = fake.state.calls["chat"]
        fresh = client.post(
            "/v1/screening/estimate",
            json={"papers_count": 15, "model": "gpt-4.1-mini", "repetitions": 2,
                  "criteria_count": 1},
            headers=ALICE,
        ).json()["estimated_cost_usd"]  # fmt: skip
        second = _run(client, ALICE, papers=_papers(0, 15))
        calls_second = fake.state.calls["chat"] - calls_first
        assert second["status"] == "completed"
        reused = [r for r in second["results"] if r.get("reused_from")]
        assert {r["id"] for r in reused} == {f"p{i}" for i in range(10)}
        assert all(r["reused_from"] == first["job_id"] for r in reused)
        old = {r["id"]: r["final_score"] for r in first["results"]}
        assert all(r["final_score"] == old[r["id"]] for r in reused)  # decisions do not shift
        assert second["usage"]["reused_count"] == 10 and second["usage"]["screened_count"] == 5
        # 5 new papers x (labelling + reasoning) plus the themes, not 15 papers' worth
        assert calls_second < calls_first
        assert second["estimated_cost_usd"] < fresh

        other_tenant = _run(client, BOB, papers=_papers(0, 3))
        assert not any(r.get("reused_from") for r in other_tenant["results"])
        no_reuse = _run(client, ALICE, papers=_papers(0, 3), reuse=False)
        assert not any(r.get("reused_from") for r in no_reuse["results"])
        for change in ({"repetitions": 3}, {"model": "gpt-4.1"},
                       {"criteria": [{"name": "Design", "type": "include", "value": "Cohorts"}]},
                       {"questions": ["Does exercise help?"]}):  # fmt: skip
            other_setup = _run(client, ALICE, papers=_papers(0, 3), **change)
            assert not any(r.get("reused_from") for r in other_setup["results"]), change
        override = {"system_prompt": "Rate strictly: 5 only for randomised trials."}
        put = client.put("/v1/config/services/screening", json=override, headers=ALICE)
        assert put.status_code == 200, put.text
        new_prompt = _run(client, ALICE, papers=_papers(0, 3))  # another prompt version
        assert not any(r.get("reused_from") for r in new_prompt["results"])
        mock = _run(client, ALICE, papers=_papers(0, 3), mock=True)
        again = _run(client, ALICE, papers=_papers(20, 23), mock=False)
        assert not any(r.get("reused_from") for r in mock["results"] + again["results"])


def test_update_adds_new_papers_dedups_and_reuses(tmp_path: Path, fake: FakeOpenAIServer) -> None:
    with TestClient(create_app(make_settings(tmp_path, fake))) as client:
        old = [{**p, "doi": f"10.1/x{i}"} for i, p in enumerate(_papers(0, 8))]
        first = _run(client, {}, papers=old, threshold=3)
        calls_first = fake.state.calls["chat"]
        update = [
            {"id": "again-by-doi", "title": "Other words", "doi": "10.1/X3"},  # duplicate
            {"id": "again-by-title", "title": "Trial 5 of exercise", "abstract": "Adults 5."},
            *_papers(100, 104),  # new
        ]
        response = client.post(
            f"/v1/screening/jobs/{first['job_id']}/update", json={"papers": update}
        )
        assert response.status_code == 200, response.text
        created = response.json()
        assert created["update_of"] == first["job_id"]
        assert (created["added_count"], created["duplicate_count"]) == (4, 2)
        assert set(created["duplicate_ids"]) == {"again-by-doi", "again-by-title"}
        assert created["reused_count"] == 8
        deadline = time.monotonic() + 60
        while (job := client.get(f"/v1/screening/jobs/{created['job_id']}").json())[
            "status"
        ] != "completed":
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert job["papers_count"] == 12 and job["update_of"] == first["job_id"]
        assert job["reused_count"] == 8 and job["added_count"] == 4
        assert fake.state.calls["chat"] - calls_first < calls_first  # only 4 papers screened
        provenance = client.get(f"/v1/screening/jobs/{created['job_id']}/provenance").json()
        assert provenance["parameters"]["update_of"] == first["job_id"]
        assert provenance["parameters"]["threshold"] == 3
        clash = client.post(
            f"/v1/screening/jobs/{first['job_id']}/update",
            json={"papers": [{"id": "p1", "title": "A wholly different paper about sleep"}]},
        )
        assert clash.status_code == 400 and "p1" in clash.json()["detail"]


def _calls(fake: FakeOpenAIServer) -> dict[str, int]:
    return {kind: row[0] for kind, row in fake.state.by_kind.items()}


def test_an_update_of_2000_papers_costs_only_its_new_ones(
    tmp_path: Path, fake: FakeOpenAIServer
) -> None:
    """Issue 26's scale check: 2,000 papers, then an update with 100 new and 50 duplicates."""
    with TestClient(create_app(make_settings(tmp_path, fake))) as client:
        old = [{**p, "doi": f"10.9/p{i}"} for i, p in enumerate(_papers(0, 2000))]
        request = {"criteria": CRITERIA, "model": "gpt-4.1-mini", "repetitions": 2, "papers": old}
        first = _wait(client, client.post("/v1/screening/jobs", json=request).json()["job_id"])
        first_calls = _calls(fake)
        update = [*_papers(5000, 5100)]  # 100 new
        update += [{"id": f"again{i}", "title": "Other", "doi": f"10.9/P{i}"} for i in range(50)]
        created = client.post(
            f"/v1/screening/jobs/{first['job_id']}/update", json={"papers": update}
        )
        assert created.status_code == 200, created.text
        body = created.json()
        assert (body["added_count"], body["duplicate_count"], body["reused_count"]) == (
            100,
            50,
            2000,
        )
        job = _wait(client, body["job_id"])
        calls = {k: v - first_calls.get(k, 0) for k, v in _calls(fake).items()}
        themes = {"ThemesOutput", "MergedThemes", "AssignmentOutput"}  # again over the whole set
        screening = sum(v for k, v in first_calls.items() if k not in themes)
        assert screening >= 2000 * 2, first_calls  # labelling (n = 2 in one call), reasoning
        update_screening = sum(v for k, v in calls.items() if k not in themes)
        assert update_screening <= 0.06 * screening, (calls, first_calls)  # 200 of 4,000
        assert calls.get("AssignmentOutput", 0) == 84  # themes: every paper again, 25 a call
        before = {r["id"]: r["final_score"] for r in first["results"]}
        results = {r["id"]: r for r in job["results"]}
        assert len(results) == 2100
        assert all(results[i]["final_score"] == s for i, s in before.items())
        assert all(results[f"p{i}"].get("reused_from") is None for i in range(5000, 5100))
        assert all(r.get("cluster_id") is not None for r in results.values())


def _wait(client: TestClient, job_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 300
    while (job := client.get(f"/v1/screening/jobs/{job_id}").json())["status"] != "completed":
        assert job["status"] not in ("failed", "cancelled") and time.monotonic() < deadline
        time.sleep(0.2)
    return dict(job)


def test_reuse_retention_forgets_old_results(tmp_path: Path, fake: FakeOpenAIServer) -> None:
    settings = make_settings(tmp_path, fake, reuse_retention_days=7)
    with TestClient(create_app(settings)) as client:
        first = _run(client, {}, papers=_papers(0, 4))
        services = client.app.state.services  # type: ignore[attr-defined]
        assert services.jobs.purge_reuse_index() == 0  # nothing is old yet
        assert _run(client, {}, papers=_papers(0, 4))["usage"]["reused_count"] == 4
        engine = create_engine(settings.sqlalchemy_url)
        with engine.begin() as conn:  # as if both jobs had run eight days ago
            conn.execute(
                text("UPDATE job_items SET updated_at = :t"),
                {"t": datetime.now(UTC) - timedelta(days=8)},
            )
        assert _run(client, {}, papers=_papers(0, 4))["usage"]["reused_count"] == 0
        assert services.jobs.purge_reuse_index() >= 8
        with engine.begin() as conn:
            old = conn.execute(
                text("SELECT count(*) FROM job_items WHERE reuse_key IS NOT NULL AND job_id = :j"),
                {"j": first["job_id"]},
            ).scalar()
        assert old == 0


def test_an_update_with_repeated_ids_is_a_400_naming_papers(
    tmp_path: Path, fake: FakeOpenAIServer
) -> None:
    """Found by the schema fuzzer: untitled papers sharing an id were a 500."""
    with TestClient(create_app(make_settings(tmp_path, fake))) as client:
        job = _run(client, {}, papers=_papers(0, 2), mock=True)
        r = client.post(f"/v1/screening/jobs/{job['job_id']}/update",
                        json={"papers": [{"id": "0"}, {"id": "0"}]})  # fmt: skip
        assert r.status_code == 400 and "papers: duplicate paper ids: 0" in r.text
        assert client.get("/health").status_code == 200
