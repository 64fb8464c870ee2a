"""Every bad input a clear 4xx, no state a request can poison, honest outcomes (issue 12)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine

import crystallise.readiness
from crystallise.api.app import create_app
from crystallise.common.quotes import verify_quotes
from tests.conftest import make_settings
from tests.fake_openai import FakeOpenAIServer

PAPER = {"id": "p1", "title": "Trial", "abstract": "Adults."}
FIELDS = [{"name": "n", "description": "Participants", "data_type_primary": "number"}]


def raw(client: TestClient, path: str, text: str, **headers: str) -> Any:
    return client.post(
        path, content=text.encode(), headers={"content-type": "application/json", **headers}
    )


# ---- state no request can poison ---------------------------------------------------------
def test_null_in_partial_update_resets_to_default(client: TestClient) -> None:
    assert client.put("/v1/config/services/screening", json={"temperature": 0.3}).status_code == 200
    r = client.put("/v1/config/services/screening", json={"model": None, "extra": None})
    assert r.status_code == 200, r.text
    assert r.json()["model"] == "gpt-5-nano" and r.json()["extra"] == {}
    assert r.json()["temperature"] == 0.3  # fields not sent keep their override
    r = client.put("/v1/config/services/screening", json={"temperature": None})
    assert r.json()["temperature"] is None
    assert client.get("/v1/config/services").status_code == 200
    assert client.get("/health/ready").status_code in (200, 503)
    q = client.post("/v1/criteria/analyze-question", json={"research_question": "X?", "mock": True})
    assert q.status_code == 200


def test_unreadable_stored_config_is_ignored_not_a_500(client: TestClient) -> None:
    store = client.app.state.services.configs._store  # type: ignore[attr-defined]
    store.merge_override("criteria", {"model": 42, "max_output_tokens": "lots", "temperature": 0.1})
    for path in ("/v1/config/services", "/v1/config/services/criteria", "/health/ready"):
        assert client.get(path).status_code in (200, 503), path
    cfg = client.get("/v1/config/services/criteria").json()
    assert cfg["model"] == "gpt-4.1" and cfg["temperature"] == 0.1  # the valid part kept


def test_service_ids_are_the_known_set(client: TestClient) -> None:
    r = client.put("/v1/config/services/" + "x" * 10_000, json={"temperature": 0.1})
    assert r.status_code == 404 and "known:" in r.json()["detail"]
    assert len(r.text) < 2_000
    ids = {c["service_id"] for c in client.get("/v1/config/services").json()}
    assert "x" * 10_000 not in ids


# ---- bounds at the boundary ---------------------------------------------------------------
@pytest.mark.parametrize(
    ("path", "text", "field"),
    [
        (
            "/v1/screening/jobs",
            '{"papers":[{"id":"p","title":"x\\ud800y"}],"mock":true}',
            "papers[0].title",
        ),
        (
            "/v1/screening/jobs",
            '{"papers":[{"id":"p","abstract":"a\\udfffb"}],"mock":true}',
            "papers[0].abstract",
        ),
        (
            "/v1/indexer/run",
            '{"records":[{"ID":"r","Title":"\\ud800"}],"fields":[{"name":"n",'
            '"data_type_primary":"text"}],"mock":true}',
            "records[0].Title",
        ),
        (
            "/v1/indexer/group-tags",
            '{"field_name":"f","values":["a","\\ud800"],"mock":true}',
            "values[1]",
        ),
        ("/v1/screening/estimate", '{"papers_count":1,"model":"gpt\\ud800"}', "model"),
        ("/v1/screening/jobs", '{"papers":[{"id":"a\\u0000b"}],"mock":true}', "papers[0].id"),
    ],
)
def test_invalid_text_is_a_400_naming_the_field(
    client: TestClient, path: str, text: str, field: str
) -> None:
    r = raw(client, path, text)
    assert r.status_code == 400, r.text
    assert field in r.json()["detail"]
    assert client.get("/health").status_code == 200  # the connection and service are fine


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ({"papers": [PAPER], "mock": True, "project_id": 2**63}, "Integer out of range"),
        ({"papers": [PAPER], "mock": True, "project_id": 2**31}, "project_id"),
        ({"papers": [PAPER], "mock": True, "threshold": -5}, "threshold"),
        ({"papers": [PAPER], "mock": True, "repetitions": "5"}, "repetitions"),
        ({"papers": [{"id": "x" * 513}], "mock": True}, "papers[0].id"),
        ({"papers": [PAPER], "mock": True, "max_estimated_cost_usd": 1e400}, "finite"),
    ],
)
def test_numbers_and_ids_out_of_bounds(
    client: TestClient, body: dict[str, Any], needle: str
) -> None:
    text = json.dumps(body).replace("Infinity", "1e400")
    r = raw(client, "/v1/screening/jobs", text)
    assert r.status_code == 400, r.text
    assert needle in r.text


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_non_finite_numbers_are_refused(client: TestClient, constant: str) -> None:
    r = raw(
        client, "/v1/screening/jobs", f'{{"papers":[{json.dumps(PAPER)}],"threshold":{constant}}}'
    )
    assert r.status_code == 400 and constant in r.json()["detail"]
    r = raw(
        client,
        "/v1/indexer/run",
        f'{{"records":[{{"ID":"r","Title":"t","n":{constant}}}],"fields":{json.dumps(FIELDS)}}}',
    )
    assert r.status_code == 400
    r = client.put(
        "/v1/config/services/screening",
        content=f'{{"extra":{{"k":{constant}}}}}',
        headers={"content-type": "application/json"},
    )
    assert r.status_code == 400


def test_query_bounds(client: TestClient) -> None:
    assert client.get(f"/v1/screening/active-job?project_id={2**63}").status_code == 400
    job = client.post("/v1/screening/jobs", json={"papers": [PAPER], "mock": True}).json()["job_id"]
    r = client.get(f"/v1/screening/jobs/{job}/results?offset={10**20}")
    assert r.status_code == 400 and "offset" in r.text
    assert client.get("/v1/screening/jobs/a%00b").status_code == 404


def test_wrong_content_type_is_415(client: TestClient) -> None:
    r = client.post(
        "/v1/screening/estimate", content=b"papers_count=1", headers={"content-type": "text/plain"}
    )
    assert r.status_code == 415 and "text/plain" in r.json()["detail"]


def test_chunked_body_over_the_limit_is_413(tmp_path: Path, fake: FakeOpenAIServer) -> None:
    app = create_app(make_settings(tmp_path, fake, max_request_bytes=1000))

    def chunks() -> Iterator[bytes]:
        yield b'{"papers_count": 1, "pad": "'
        for _ in range(10):
            yield b"x" * 500
        yield b'"}'

    with TestClient(app) as client:
        r = client.post(
            "/v1/screening/estimate", content=chunks(), headers={"content-type": "application/json"}
        )
    assert r.status_code == 413


# ---- honest outcomes ----------------------------------------------------------------------
def test_rejected_key_on_sync_indexer_is_401_and_masked_key_never_echoed(
    client: TestClient, fake: FakeOpenAIServer
) -> None:
    fake.configure(valid_keys=["sk-good-000000000"], echo_masked_key=True)
    r = client.post(
        "/v1/indexer/run",
        json={"records": [{"ID": "r", "Title": "t"}], "fields": FIELDS},
        headers={"X-OpenAI-API-Key": "sk-bad-0000000pXYZ"},
    )
    assert r.status_code == 401 and r.json()["detail"]["error_code"] == "auth"
    assert "pXYZ" not in r.text and "****" not in r.text


def test_readiness_degrades_when_database_or_disk_fails(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    services = client.app.state.services  # type: ignore[attr-defined]
    monkeypatch.setattr(crystallise.readiness, "MIN_FREE_BYTES", 2**62)
    r = client.get("/health/ready")
    assert r.status_code == 503 and r.json()["checks"]["disk"].startswith("low")
    monkeypatch.undo()
    dead = create_engine(
        "postgresql+psycopg://postgres@127.0.0.1:9/none", connect_args={"connect_timeout": 1}
    )
    monkeypatch.setattr(services, "engine", dead)
    r = client.get("/health/ready")
    assert r.status_code == 503 and r.json()["status"] == "degraded"
    assert r.json()["checks"]["database"].startswith("error")


def test_5xx_carries_the_real_request_id(client: TestClient) -> None:
    def boom() -> None:
        raise RuntimeError("boom")

    client.app.add_api_route("/boom", boom)  # type: ignore[attr-defined]
    r = TestClient(client.app, raise_server_exceptions=False).get("/boom")
    assert r.status_code == 500
    rid = r.json()["request_id"]
    assert rid != "-" and len(rid) == 32 and r.headers["x-request-id"] == rid


def test_sync_call_total_time_is_bounded(tmp_path: Path, fake: FakeOpenAIServer) -> None:
    fake.configure(latency_s=3.0)
    app = create_app(make_settings(tmp_path, fake, sync_timeout_s=0.5))
    with TestClient(app) as client:
        started = time.monotonic()
        r = client.post("/v1/criteria/analyze-question", json={"research_question": "X?"})
        elapsed = time.monotonic() - started
    assert r.json()["detail"]["error_code"] == "timeout" and r.json()["detail"]["retryable"]
    assert "CRYSTALLISE_SYNC_TIMEOUT_S" in r.json()["detail"]["message"]
    assert elapsed < 2.5


def test_docs_behind_the_key_when_configured(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, api_keys="k1", docs_require_key=True)
    with TestClient(create_app(settings)) as c:
        assert c.get("/openapi.json").status_code == 401
        assert c.get("/docs").status_code == 401
        assert c.get("/openapi.json", headers={"X-API-Key": "k1"}).status_code == 200
        assert c.get("/docs", headers={"X-API-Key": "k1"}).status_code == 200


def test_short_quotes_do_not_verify() -> None:
    assert verify_quotes(["a"], "A trial", "12 adults") == (False, ["a"])
    assert verify_quotes(["12"], "A trial", "12 adults") == (False, ["12"])
    assert verify_quotes(["150"], "A trial", "150 adults") == (True, [])
