"""The finished job's poll (issue 28): encoded once from the stored JSON, yet the same body
the response model gives, value for value and type for type (3.0 stays 3.0)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from crystallise.api.app import create_app
from crystallise.api.routers.screening import _job_view
from tests.conftest import make_settings
from tests.fake_openai import FakeOpenAIServer
from tests.screening.test_screening_api import CRITERIA, papers, wait


def _canonical(body: Any) -> str:
    return json.dumps(body, sort_keys=True)


def test_the_poll_of_an_ended_job_equals_the_response_model(
    tmp_path: Path, fake: FakeOpenAIServer
) -> None:
    settings = make_settings(tmp_path, fake, database_url=f"sqlite:///{tmp_path / 'p.db'}")
    with TestClient(create_app(settings)) as client:
        services = client.app.state.services  # type: ignore[attr-defined]
        jobs = []
        for body in (
            {"mock": True, "threshold": 3.5},
            {"mock": False, "repetitions": 2},
            {"mock": False, "project_id": 7},  # paper 3 fails (below): an item error
        ):
            fake.configure(fail_match="Trial 3 of drug X" if "project_id" in body else "")
            payload = {"papers": papers(5), "criteria": CRITERIA, "questions": ["q?"], **body}
            job_id = client.post("/v1/screening/jobs", json=payload).json()["job_id"]
            jobs.append(job_id)
            wait(client, job_id)
        for job_id in jobs:
            got = client.get(f"/v1/screening/jobs/{job_id}")
            assert got.status_code == 200 and got.headers["content-type"] == "application/json"
            row = services.jobs.get_job("screening", job_id)
            items = list(services.jobs.iter_items(job_id))
            want = _job_view(row, items).model_dump(mode="json", exclude_none=True)
            assert _canonical(got.json()) == _canonical(want)
            assert list(got.json()) == list(want)  # the same fields in the same order
        mock = client.get(f"/v1/screening/jobs/{jobs[0]}").json()["results"]
        assert any("exclusion_reason" in r for r in mock)  # added at the job's threshold
        failed = client.get(f"/v1/screening/jobs/{jobs[2]}").json()
        assert failed["failed_count"] == 1 and any("error" in r for r in failed["results"])
