"""SQLite out of space, then freed (issue 11): job creation while full is a clear 503; a job
whose writes hit a full database retries them and completes, every paper exactly once, once
space is back. "Full" is SQLite's own SQLITE_FULL, reached with PRAGMA max_page_count."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event

from crystallise.api.app import create_app
from tests.conftest import make_settings
from tests.fake_openai import FakeOpenAIServer
from tests.screening.test_screening_api import CRITERIA, papers, wait


def test_full_database_then_freed(
    tmp_path: Path, fake: FakeOpenAIServer, capsys: pytest.CaptureFixture[str]
) -> None:
    app = create_app(make_settings(tmp_path, fake, db_retry_s=30))
    cap: dict[str, int | None] = {"pages": None}
    with TestClient(app) as client:
        engine = app.state.services.engine

        @event.listens_for(engine, "connect")
        def _limit(dbapi_conn: Any, _: Any) -> None:
            if cap["pages"]:
                dbapi_conn.execute(f"PRAGMA max_page_count={cap['pages']}")

        def fill(extra_pages: int) -> None:
            with engine.connect() as conn:
                pages = int(conn.exec_driver_sql("PRAGMA page_count").scalar() or 0)
            cap["pages"] = pages + extra_pages
            engine.dispose()  # every new connection gets the cap

        def free() -> None:
            cap["pages"] = None
            engine.dispose()

        body = {"papers": papers(120), "criteria": CRITERIA, "model": "gpt-4.1-mini"}
        fill(0)
        refused = client.post("/v1/screening/jobs", json=body)
        assert refused.status_code == 503, refused.text
        assert "disk" in refused.json()["detail"] and refused.json()["request_id"]
        assert client.get("/health").status_code == 200
        free()

        fake.configure(latency_s=0.05)
        job_id = client.post("/v1/screening/jobs", json=body).json()["job_id"]
        deadline = time.monotonic() + 30
        while client.get(f"/v1/screening/jobs/{job_id}").json()["progress"] < 0.1:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        fill(1)  # the disk fills up mid-job ...
        threading.Timer(2.0, free).start()  # ... and is freed two seconds later
        result = wait(client, job_id, timeout=120)
    assert result["status"] == "completed", result.get("error")
    ids = [r["id"] for r in result["results"]]
    assert sorted(ids) == sorted(p["id"] for p in body["papers"])
    assert all(r.get("reasoning") and "cluster_id" in r for r in result["results"])
    logged = capsys.readouterr()
    assert "db_retry" in logged.out + logged.err  # the full disk was met mid-job, and ridden out
