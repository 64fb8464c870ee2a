"""GET .../jobs/{id}/provenance for both job kinds (issue 16, item 3)."""

from __future__ import annotations

import time

from fastapi.testclient import TestClient


def _wait(client: TestClient, path: str) -> None:
    deadline = time.monotonic() + 30
    while client.get(path).json()["status"] not in ("completed", "failed", "cancelled"):
        assert time.monotonic() < deadline
        time.sleep(0.05)


def test_screening_provenance_states_the_facts(client: TestClient) -> None:
    papers = [{"id": f"p{i}", "title": f"Paper {i}", "abstract": "Trial."} for i in range(12)]
    body = {
        "papers": papers,
        "criteria": [{"name": "Population", "type": "include", "value": "adults"}],
        "repetitions": 3,
        "threshold": 3.0,
        "mock": True,
    }
    job_id = client.post("/v1/screening/jobs", json=body).json()["job_id"]
    _wait(client, f"/v1/screening/jobs/{job_id}")
    p = client.get(f"/v1/screening/jobs/{job_id}/provenance").json()
    assert p["kind"] == "screening" and p["software"]["crystallise"]
    assert p["model_requested"] is None and p["model"]  # the service default ran
    assert "screening.theme_merge" in p["prompt_versions"]
    assert p["parameters"]["repetitions"] == 3 and p["parameters"]["criteria_count"] == 1
    counts = p["counts"]
    assert counts["records"] == counts["processed"] == 12 and counts["failed"] == 0
    assert counts["below_threshold"] + counts["at_or_above_threshold"] == 12
    assert "Crystallise" in p["methods"] and "12 records" in p["methods"]
    assert "sk-" not in str(p)  # settings shown never include a key


def test_indexer_provenance_and_404(client: TestClient) -> None:
    body = {
        "records": [{"ID": "r1", "Title": "A trial of 120 adults"}],
        "fields": [{"name": "n", "description": "sample size", "data_type_primary": "number"}],
        "model": "gpt-4.1-mini",
        "mock": True,
    }
    job_id = client.post("/v1/indexer/jobs", json=body).json()["job_id"]
    _wait(client, f"/v1/indexer/jobs/{job_id}")
    p = client.get(f"/v1/indexer/jobs/{job_id}/provenance").json()
    assert p["model_requested"] == "gpt-4.1-mini" and p["parameters"]["fields"] == ["n"]
    assert "indexer.extraction" in p["prompt_versions"]
    assert client.get("/v1/indexer/jobs/nope/provenance").status_code == 404
