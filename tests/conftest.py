"""Shared fixtures: the fake OpenAI server, settings, databases (SQLite files and PostgreSQL)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from crystallise.api.app import create_app
from crystallise.config.settings import Settings
from tests.fake_openai import FakeOpenAIServer

PG_ADMIN_URL = os.environ.get(
    "CRYSTALLISE_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
SERVER_KEY = "sk-server-test-0123456789abcdef"


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test sees the machine's keys or CRYSTALLISE_* settings."""
    for name in list(os.environ):
        if name.startswith("CRYSTALLISE_") and not name.startswith(
            ("CRYSTALLISE_TEST_", "CRYSTALLISE_REQUIRE_")
        ):
            monkeypatch.delenv(name)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)


@pytest.fixture(scope="session")
def fake_server() -> Iterator[FakeOpenAIServer]:
    server = FakeOpenAIServer().start()
    yield server
    server.stop()


@pytest.fixture
def fake(fake_server: FakeOpenAIServer) -> FakeOpenAIServer:
    fake_server.reset()
    return fake_server


# ---- databases -------------------------------------------------------------------------
def _pg_database() -> str | None:
    """Create a throw-away database on the PostgreSQL server; None if there is no server."""
    try:
        import psycopg

        with psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=3) as conn:
            name = f"crystallise_test_{uuid.uuid4().hex[:10]}"
            conn.execute(f'CREATE DATABASE "{name}"')
    except Exception as exc:
        _pg_database.reason = f"{type(exc).__name__}: {exc}".splitlines()[0]  # type: ignore[attr-defined]
        return None
    base = PG_ADMIN_URL.rsplit("/", 1)[0]
    return f"{base}/{name}"


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    url = _pg_database()
    if url is None:
        reason = getattr(_pg_database, "reason", "unknown")
        if os.environ.get("CRYSTALLISE_REQUIRE_POSTGRES"):
            pytest.fail(f"PostgreSQL required (CI) but not reachable at {PG_ADMIN_URL}: {reason}")
        pytest.skip(
            f"PostgreSQL not reachable at {PG_ADMIN_URL} ({reason}); PostgreSQL tests skipped"
        )
    yield url
    import psycopg

    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)')


def _reset_pg(url: str) -> None:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DROP SCHEMA public CASCADE")
        conn.execute("CREATE SCHEMA public")


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: object) -> str:
    """Each test using this runs on a fresh SQLite file and on a fresh PostgreSQL schema."""
    if request.param == "sqlite":
        return ""
    url: str = request.getfixturevalue("pg_url")
    _reset_pg(url)
    return url


# ---- settings and app ------------------------------------------------------------------
def make_settings(
    tmp_path: object, fake: FakeOpenAIServer | None = None, **overrides: object
) -> Settings:
    values: dict[str, object] = {
        "data_dir": tmp_path,
        "openai_base_url": fake.url if fake else "http://127.0.0.1:9/v1",
        "openai_api_key": SERVER_KEY,
        "retry_delays": [0.01, 0.01, 0.01],
        "log_json": True,
        # jobs in the test's own event loop; tests/durability/test_job_process.py covers the
        # default (a job process beside the API)
        "job_queue": "inprocess",
        # the fake stands in for OpenAI: unknown models refused as OpenAI would (the
        # local-server default, accepted, is covered in tests/llm/test_dialects.py)
        "allow_unknown_models": False,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[arg-type, call-arg]


@pytest.fixture
def settings(tmp_path: object, fake: FakeOpenAIServer, database_url: str) -> Settings:
    return make_settings(tmp_path, fake, database_url=database_url)


@pytest.fixture
def sqlite_settings(tmp_path: object, fake: FakeOpenAIServer) -> Settings:
    return make_settings(tmp_path, fake)


@pytest.fixture
def client(sqlite_settings: Settings, fake: FakeOpenAIServer) -> Iterator[TestClient]:
    app = create_app(sqlite_settings)
    app.state.fake = fake  # lets a test reach the fake provider this app talks to
    with TestClient(app) as test_client:
        yield test_client
