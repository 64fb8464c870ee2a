"""Idempotent creation, server-sent events, secrets never at rest in plain text, orphans."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from crystallise.api.app import create_app
from crystallise.common.secrets import SecretBox
from crystallise.config.settings import Settings
from crystallise.db.jobs import utcnow
from crystallise.indexer.schemas import IndexerRequest
from crystallise.jobs.engine.runner import JobRunner
from crystallise.jobs.submit import Submission, submit_indexing
from crystallise.services import Services
from tests.conftest import make_settings
from tests.fake_openai import FakeOpenAIServer

CALLER_KEY = "sk-caller-secret-7f3a9b2c4d5e6f70"
PAPERS = [
    {"id": f"p{i}", "title": f"Paper {i}", "abstract": "A randomised trial in adults."}
    for i in range(6)
]
RECORDS = [
    {"ID": f"r{i}", "Title": f"Record {i}", "Abstract": "We randomised 120 adults."}
    for i in range(4)
]
FIELDS = [{"name": "sample_size", "description": "n", "data_type_primary": "number"}]


@pytest.mark.parametrize(
    ("path", "body", "other"),
    [
        (
            "/v1/screening/jobs",
            {"papers": PAPERS, "mock": True},
            {"papers": PAPERS[:2], "mock": True},
        ),
        (
            "/v1/indexer/jobs",
            {"records": RECORDS, "fields": FIELDS, "mock": True},
            {"records": RECORDS[:1], "fields": FIELDS, "mock": True},
        ),
    ],
)
def test_idempotency_key(
    client: TestClient, path: str, body: dict[str, Any], other: dict[str, Any]
) -> None:
    first = client.post(path, json=body, headers={"Idempotency-Key": "abc"})
    again = client.post(path, json=body, headers={"Idempotency-Key": "abc"})
    assert first.status_code == again.status_code == 200
    assert first.json()["job_id"] == again.json()["job_id"]
    kind = path.split("/")[2]
    assert len(client.get(f"/v1/{kind}/jobs").json()) == 1
    conflict = client.post(path, json=other, headers={"Idempotency-Key": "abc"})
    assert conflict.status_code == 409 and "different request body" in conflict.json()["detail"]
    fresh = client.post(path, json=body, headers={"Idempotency-Key": "def"})
    assert fresh.json()["job_id"] != first.json()["job_id"]
    assert client.post(path, json=body, headers={"Idempotency-Key": "x" * 300}).status_code == 400


def _events(raw: str) -> list[tuple[str, dict[str, Any]]]:
    out = []
    for block in raw.strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines() if not line.startswith(":"))
        if "event" in lines:
            out.append((lines["event"], json.loads(lines["data"])))
    return out


@pytest.mark.parametrize("kind", ["screening", "indexer"])
def test_events_stream_progress_then_terminal_state(
    client: TestClient, fake: FakeOpenAIServer, kind: str
) -> None:
    fake.configure(latency_s=0.05)
    if kind == "screening":
        job_id = client.post(
            "/v1/screening/jobs", json={"papers": PAPERS, "model": "gpt-4.1-mini"}
        ).json()["job_id"]
    else:
        job_id = client.post(
            "/v1/indexer/jobs", json={"records": RECORDS, "fields": FIELDS, "max_workers": 1}
        ).json()["job_id"]
    with client.stream("GET", f"/v1/{kind}/jobs/{job_id}/events") as response:
        assert response.status_code == 200 and response.headers["content-type"].startswith(
            "text/event-stream"
        )
        raw = "".join(response.iter_text())
    events = _events(raw)
    names = [e for e, _ in events]
    assert names[-1] == "completed" and events[-1][1]["status"] == "completed"
    assert "progress" in names and "stage" in names
    progress = [d["progress"] for e, d in events if e == "progress"]
    assert progress == sorted(progress)
    assert client.get(f"/v1/{kind}/jobs/nope/events").status_code == 404


def _dump(settings: Settings) -> str:
    """Every row of every table, as text (what a database dump would expose)."""
    from sqlalchemy import inspect, text

    services = Services.build(settings, migrate=False)
    with services.engine.connect() as conn:
        chunks = []
        for table in inspect(conn).get_table_names():
            chunks += [repr(tuple(r)) for r in conn.execute(text(f'SELECT * FROM "{table}"'))]
    services.engine.dispose()
    return "\n".join(chunks)


def test_request_key_never_at_rest_in_plain_text(
    tmp_path: Path, fake: FakeOpenAIServer, database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = make_settings(
        tmp_path,
        fake,
        database_url=database_url,
        job_queue="inprocess",
        secret_key="server-secret-for-tests",
    )
    fake.configure(latency_s=0.1)
    with TestClient(create_app(settings)) as c:
        job_id = c.post(
            "/v1/screening/jobs",
            json={"papers": PAPERS, "model": "gpt-4.1-mini"},
            headers={"X-OpenAI-API-Key": CALLER_KEY},
        ).json()["job_id"]
        time.sleep(0.3)
        during = _dump(settings)
        assert CALLER_KEY not in during
        row = c.app.state.services.jobs.get_job("screening", job_id)
        assert row.encrypted_openai_key and row.status == "running"  # held encrypted while it runs
        deadline = time.monotonic() + 30
        while c.get(f"/v1/screening/jobs/{job_id}").json()["status"] != "completed":
            assert time.monotonic() < deadline
            time.sleep(0.05)
        body = c.get(f"/v1/screening/jobs/{job_id}").text
        after = _dump(settings)
        assert (
            c.app.state.services.jobs.get_job("screening", job_id).encrypted_openai_key is None
        )  # erased
    assert {r["key"] for r in fake.requests()} == {CALLER_KEY}  # it did reach the provider
    logs = capsys.readouterr()
    for text_ in (after, body, logs.out, logs.err):
        assert CALLER_KEY not in text_ and CALLER_KEY[3:] not in text_


async def test_encrypted_key_lets_a_job_resume_after_restart(
    tmp_path: Path, fake: FakeOpenAIServer
) -> None:
    settings = make_settings(tmp_path, fake, secret_key="s3cret")
    from crystallise.jobs.start import start_services

    services = await start_services(settings)
    body = IndexerRequest(records=RECORDS, fields=FIELDS, model="gpt-4.1-mini", max_workers=2)
    stored = await submit_indexing(services, body, Submission(CALLER_KEY, dispatch=False))
    job_id = stored.id
    services.jobs.update_job("indexer", job_id, status="running")  # as if the process died
    assert await services.runner.resume_unfinished() == [job_id]
    await services.runner.wait(job_id, timeout=20)
    row = services.jobs.get_job("indexer", job_id)
    assert row.status == "completed" and row.encrypted_openai_key is None  # type: ignore[union-attr]
    assert {r["key"] for r in fake.requests()} == {CALLER_KEY}
    # with another secret the key cannot be read back: the job fails as the contract says
    body = IndexerRequest(records=RECORDS[:1], fields=FIELDS, model="gpt-4.1-mini")
    other = (await submit_indexing(services, body, Submission(CALLER_KEY, dispatch=False))).id
    services.jobs.update_job(
        "indexer", other, encrypted_openai_key=SecretBox("old-secret").encrypt(CALLER_KEY)
    )
    await services.runner.execute("indexer", other)
    assert services.jobs.get_job("indexer", other).error_category == "server_restart"  # type: ignore[union-attr]
    await services.aclose()


def test_orphaned_request_key_jobs_fail_once_their_process_is_silent(
    tmp_path: Path, fake: FakeOpenAIServer
) -> None:
    services = Services.build(make_settings(tmp_path, fake))
    runner = JobRunner(services.store)
    stale, fresh, server_key = (str(uuid.uuid4()) for _ in range(3))
    for job_id, source in ((stale, "request"), (fresh, "request"), (server_key, "server")):
        services.jobs.create_job(
            "screening", job_id=job_id, items=[("p", {"id": "p"})], key_source=source
        )
        services.jobs.update_job("screening", job_id, status="running")
    from datetime import timedelta

    from sqlalchemy import update

    from crystallise.db.models import ScreeningJob

    with services.engine.begin() as conn:
        conn.execute(
            update(ScreeningJob)
            .where(ScreeningJob.id.in_([stale, server_key]))
            .values(updated_at=utcnow() - timedelta(minutes=5))
        )
    assert asyncio.run(runner.fail_orphaned(60)) == 1
    assert services.jobs.get_job("screening", stale).error_category == "server_restart"  # type: ignore[union-attr]
    assert services.jobs.get_job("screening", fresh).status == "running"  # type: ignore[union-attr]
    assert services.jobs.get_job("screening", server_key).status == "running"  # type: ignore[union-attr]
    asyncio.run(services.aclose())
