"""No synchronous database call on the event loop (issue 28): every statement a request
causes runs in a worker thread, so one slow query never stalls the other requests.

The app runs against a real SQLite file; a SQLAlchemy hook records every statement executed
on a thread that is running an event loop. The requests cover each front: screening (create,
poll, results, exports, estimate), the indexer, criteria help, the service configuration,
decisions and prioritisation sessions, health and readiness."""

from __future__ import annotations

import asyncio
import time
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event

from crystallise.api.app import create_app
from tests.conftest import make_settings
from tests.fake_openai import FakeOpenAIServer
from tests.screening.test_screening_api import CRITERIA, papers


def _on_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


@pytest.fixture
def watched(tmp_path: Path, fake: FakeOpenAIServer) -> Iterator[tuple[TestClient, list[str]]]:
    seen: list[str] = []

    def hook(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if _on_loop():
            ours = [f for f in traceback.format_stack() if "/crystallise/" in f]
            where = "".join(ours[-6:])
            seen.append(f"{statement.split()[0]} {statement[:80]!r}\n{where}")

    settings = make_settings(tmp_path, fake, database_url=f"sqlite:///{tmp_path / 'loop.db'}")
    with TestClient(create_app(settings)) as client:
        engine = client.app.state.services.engine  # type: ignore[attr-defined]
        event.listen(engine, "before_cursor_execute", hook)
        yield client, seen
        event.remove(engine, "before_cursor_execute", hook)


def _finished(client: TestClient, path: str) -> dict[str, Any]:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        body = client.get(path).json()
        if body["status"] in ("completed", "failed", "cancelled"):
            return dict(body)
        time.sleep(0.05)
    raise AssertionError(f"{path} did not finish")


def test_no_request_runs_a_statement_on_the_event_loop(
    watched: tuple[TestClient, list[str]],
) -> None:
    client, seen = watched
    job = {"papers": papers(6), "criteria": CRITERIA, "questions": ["Does X work?"]}
    calls = [
        ("post", "/v1/screening/jobs/estimate", job),
        ("put", "/v1/config/services/screening", {"temperature": 0.3}),
        ("get", "/v1/config/services", None),
        ("get", "/v1/config/services/screening", None),
        ("post", "/v1/criteria/analyze-question", {"research_question": "Does X help Y?"}),
        ("post", "/v1/criteria/picos", {"project_description": "Metformin in T2D"}),
        ("post", "/v1/screening/stopping", {"screened": [{"id": "a", "label": 1}],
                                            "total_records": 10}),
        ("get", "/health", None),
        ("get", "/ready", None),
    ]  # fmt: skip
    for method, path, body in calls:
        r = client.request(method.upper(), path, json=body)
        assert r.status_code < 500, (path, r.text)
    for mock in (True, False):
        job_id = client.post("/v1/screening/jobs", json={**job, "mock": mock}).json()["job_id"]
        assert _finished(client, f"/v1/screening/jobs/{job_id}")["status"] == "completed"
        for fmt in ("csv", "xlsx", "ris"):
            r = client.get(f"/v1/screening/jobs/{job_id}/export?format={fmt}")
            assert r.status_code < 500, r.text
    words = ["reminder trial", "mouse liver", "nudge doctors"]
    records = [{"id": f"r{i}", "title": words[i % 3], "abstract": ""} for i in range(12)]
    records[0]["label"], records[1]["label"] = 1, 0  # type: ignore[assignment]
    session = client.post("/v1/screening/prioritize/sessions", json={"records": records}).json()
    url = f"/v1/screening/prioritize/sessions/{session['session_id']}"
    assert client.post(f"{url}/labels", json={"labels": [{"id": "r2", "label": 1}]}).is_success
    assert client.get(url).is_success
    assert not seen, f"{len(seen)} statements on the event loop; the first:\n{seen[0]}"
