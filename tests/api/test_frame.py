"""The service frame: health, auth, routing, error contract, size limit, request ids, logs."""

from __future__ import annotations

import ast
import pathlib
from datetime import date

import pytest
from fastapi.testclient import TestClient

from crystallise.api.app import create_app
from crystallise.config import model_capabilities
from tests.conftest import SERVER_KEY, make_settings

SRC = pathlib.Path(__file__).resolve().parents[2] / "src" / "crystallise"


def test_health_is_public_and_ok(client: TestClient) -> None:
    response = client.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_ready_reports_database_and_key(client: TestClient) -> None:
    response = client.get("/health/ready")
    body = response.json()
    assert response.status_code == 200, body
    assert body["status"] == "ready"
    assert body["checks"] == {
        "database": "ok",
        "disk": "ok",
        "openai_key": "configured",
        "auth": "off (dev mode)",
    }


def test_ready_is_degraded_without_key(tmp_path: pathlib.Path) -> None:
    settings = make_settings(tmp_path, openai_api_key="", openai_base_url="")  # OpenAI itself
    with TestClient(create_app(settings)) as c:
        response = c.get("/health/ready")
    assert response.status_code == 503
    assert response.json()["status"] == "degraded"
    assert response.json()["checks"]["openai_key"] == "missing"


def test_ready_is_degraded_when_database_unreachable(tmp_path: pathlib.Path) -> None:
    settings = make_settings(tmp_path)
    with TestClient(create_app(settings)) as c:
        c.app.state.services.engine.dispose()
        # point the engine at a directory that cannot hold a database
        from crystallise.db.engine import make_engine

        c.app.state.services.engine = make_engine("postgresql+psycopg://nobody@127.0.0.1:1/x")
        response = c.get("/health/ready")
    assert response.status_code == 503
    assert response.json()["checks"]["database"].startswith("error:")


def test_ready_warns_near_shutdown_and_degrades_after(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(model_capabilities, "today_utc", lambda: date(2026, 11, 21))
    body = client.get("/health/ready").json()
    assert body["status"] == "ready"
    assert any("gpt-5-nano" in w and "2026-12-11" in w for w in body["warnings"])

    # after the date, the default policy runs retired defaults on their successors: still
    # ready, and says so (the reject policy degrades instead: tests/config/test_retirement.py)
    monkeypatch.setattr(model_capabilities, "today_utc", lambda: date(2026, 12, 12))
    response = client.get("/health/ready")
    assert response.status_code == 200
    assert any(
        "was shut down" in w and "successor 'gpt-5.4-nano'" in w
        for w in response.json()["warnings"]
    )


def test_routes_answer_with_and_without_v1_prefix(client: TestClient) -> None:
    assert client.get("/v1/config/services").status_code == 200
    assert client.get("/config/services").status_code == 200


def test_openapi_and_docs_are_public(tmp_path: pathlib.Path) -> None:
    settings = make_settings(tmp_path, api_keys="k1")
    with TestClient(create_app(settings)) as c:
        assert c.get("/openapi.json").status_code == 200
        assert c.get("/docs").status_code == 200
        assert c.get("/health/ready").status_code == 200


class TestAuth:
    @pytest.fixture
    def secured(self, tmp_path: pathlib.Path) -> TestClient:
        settings = make_settings(tmp_path, api_keys="key-one, key-two", admin_api_keys="admin-key")
        with TestClient(create_app(settings)) as c:
            yield c

    def test_missing_key_is_401(self, secured: TestClient) -> None:
        response = secured.get("/v1/config/services")
        assert response.status_code == 401
        assert response.json()["detail"].startswith("Missing API key")

    def test_invalid_key_is_401(self, secured: TestClient) -> None:
        response = secured.get("/v1/config/services", headers={"X-API-Key": "nope"})
        assert response.status_code == 401
        assert response.json()["detail"] == "Invalid API key."

    def test_x_api_key_and_bearer_both_work(self, secured: TestClient) -> None:
        assert (
            secured.get("/v1/config/services", headers={"X-API-Key": "key-two"}).status_code == 200
        )
        auth = {"Authorization": "Bearer key-one"}
        assert secured.get("/v1/config/services", headers=auth).status_code == 200

    def test_mock_endpoints_still_need_a_key(self, secured: TestClient) -> None:
        body = {"research_question": "Does X help Y?", "mock": True}
        assert secured.post("/v1/criteria/analyze-question", json=body).status_code == 401

    def test_config_put_needs_admin_key(self, secured: TestClient) -> None:
        body = {"temperature": 0.3}
        denied = secured.put(
            "/v1/config/services/criteria", json=body, headers={"X-API-Key": "key-one"}
        )
        assert denied.status_code == 403
        allowed = secured.put(
            "/v1/config/services/criteria", json=body, headers={"X-API-Key": "admin-key"}
        )
        assert allowed.status_code == 200
        assert allowed.json()["temperature"] == 0.3

    def test_dev_mode_needs_no_key(self, client: TestClient) -> None:
        assert client.get("/v1/config/services").status_code == 200


def test_validation_error_is_400_naming_field(client: TestClient) -> None:
    response = client.post("/v1/criteria/analyze-question", json={"mock": True})
    assert response.status_code == 400
    assert response.json()["detail"] == "Field required: research_question"
    assert response.json()["errors"][0]["loc"] == ["body", "research_question"]


def test_malformed_json_is_400(client: TestClient) -> None:
    response = client.post(
        "/v1/criteria/analyze-question",
        content=b"{not json",
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 400


def test_unknown_route_is_404(client: TestClient) -> None:
    assert client.get("/v1/nothing-here").status_code == 404


def test_body_over_limit_is_413(tmp_path: pathlib.Path) -> None:
    settings = make_settings(tmp_path, max_request_bytes=1000)
    with TestClient(create_app(settings)) as c:
        body = {"research_question": "x" * 2000, "mock": True}
        response = c.post("/v1/criteria/analyze-question", json=body)
    assert response.status_code == 413


def test_unexpected_error_is_generic_500_with_request_id(
    tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    app = create_app(make_settings(tmp_path))

    @app.get("/boom")
    def boom() -> None:
        raise RuntimeError(f"secret detail {SERVER_KEY}")

    with TestClient(app, raise_server_exceptions=False) as c:
        response = c.get("/boom")
    assert response.status_code == 500
    body = response.json()
    assert body["detail"] == "Internal server error"
    assert body["request_id"] == response.headers["x-request-id"]
    assert "secret" not in response.text and "Traceback" not in response.text
    assert SERVER_KEY not in capsys.readouterr().err


def test_request_id_header_is_returned(client: TestClient) -> None:
    response = client.get("/health")
    assert len(response.headers["x-request-id"]) >= 16
    echoed = client.get("/health", headers={"X-Request-ID": "abc-123"})
    assert echoed.headers["x-request-id"] == "abc-123"


def test_logs_are_json_and_never_contain_keys(
    tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import json

    settings = make_settings(tmp_path, api_keys="svc-key-123")
    with TestClient(create_app(settings)) as c:
        c.get(
            "/v1/config/services",
            headers={"X-API-Key": "svc-key-123", "X-OpenAI-API-Key": "sk-user-abcdefghijkl"},
        )
    err = capsys.readouterr().err
    lines = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    assert any(line.get("event") == "request" and line.get("request_id") for line in lines)
    assert any("DEV MODE" in line.get("event", "") for line in lines) is False
    assert "svc-key-123" not in err and "sk-user-abcdefghijkl" not in err and SERVER_KEY not in err


def test_dev_mode_warns_loudly(tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]) -> None:
    with TestClient(create_app(make_settings(tmp_path))):
        pass
    assert "DEV MODE" in capsys.readouterr().err


def test_library_never_imports_the_http_layer() -> None:
    offenders = []
    for path in SRC.rglob("*.py"):
        if "api" in path.relative_to(SRC).parts[:1] or path.name == "cli.py":
            continue
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            if any(n.startswith(("crystallise.api", "fastapi")) for n in names):
                offenders.append(str(path.relative_to(SRC)))
    assert offenders == []


def test_ready_reports_queue_workers_on_postgres(tmp_path: pathlib.Path, pg_url: str) -> None:
    from tests.conftest import _reset_pg

    _reset_pg(pg_url)
    with TestClient(
        create_app(make_settings(tmp_path, database_url=pg_url, job_queue="auto"))
    ) as c:
        body = c.get("/health/ready").json()
        assert body["checks"]["workers"] == 0
        assert any("No live `crystallise worker`" in w for w in body["warnings"])
        with c.app.state.services.engine.begin() as conn:
            from sqlalchemy import text

            conn.execute(text("INSERT INTO procrastinate_workers (last_heartbeat) VALUES (now())"))
        assert c.get("/health/ready").json()["checks"]["workers"] == 1
