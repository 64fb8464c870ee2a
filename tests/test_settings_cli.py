"""Settings (§10.1 names and defaults, .env) and the console script."""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys

import pytest

from crystallise.config.settings import Settings


def test_defaults_match_the_guide() -> None:
    s = Settings(_env_file=None)  # type: ignore[call-arg]
    assert s.openai_api_key.get_secret_value() == ""
    assert s.database_url == ""
    assert s.default_model == "gpt-5-nano"
    assert s.clustering_model == "gpt-4.1"
    assert s.max_concurrent_requests == 10
    assert s.service_api_keys == []
    assert (s.bind_host, s.api_port) == ("127.0.0.1", 8005)  # dev mode: this machine only
    keyed = Settings(_env_file=None, api_keys="k")  # type: ignore[call-arg]
    assert keyed.bind_host == "0.0.0.0"  # the guide's default once keys are set
    explicit = Settings(_env_file=None, api_host="0.0.0.0")  # type: ignore[call-arg]
    assert explicit.bind_host == "0.0.0.0"  # an explicit setting is obeyed (with a warning)
    assert s.sqlalchemy_url.startswith("sqlite:///") and s.sqlalchemy_url.endswith("crystallise.db")


def test_env_vars_and_dotenv(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CRYSTALLISE_MAX_CONCURRENT_REQUESTS", "42")
    monkeypatch.setenv("CRYSTALLISE_API_KEYS", "a, b")
    monkeypatch.setenv("CRYSTALLISE_DATABASE_URL", "postgresql://u@h:5432/db")
    env_file = tmp_path / ".env"
    env_file.write_text(
        "CRYSTALLISE_DEFAULT_MODEL=gpt-4.1-mini\nCRYSTALLISE_OPENAI_BASE_URL=http://x/v1\n"
    )
    s = Settings(_env_file=str(env_file))  # type: ignore[call-arg]
    assert s.max_concurrent_requests == 42
    assert s.service_api_keys == ["a", "b"]
    assert s.default_model == "gpt-4.1-mini"
    assert s.openai_base_url == "http://x/v1"
    assert s.sqlalchemy_url == "postgresql+psycopg://u@h:5432/db"


def test_openai_api_key_env_wins_over_crystallise_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CRYSTALLISE_OPENAI_API_KEY", "sk-crystallise")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-openai")
    assert Settings(_env_file=None).server_openai_key == "sk-openai"  # type: ignore[call-arg]
    monkeypatch.delenv("OPENAI_API_KEY")
    assert Settings(_env_file=None).server_openai_key == "sk-crystallise"  # type: ignore[call-arg]


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "crystallise.cli", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **(env or {})},
    )


def test_cli_help() -> None:
    for args in (["--help"], ["serve", "--help"], ["db", "upgrade", "--help"]):
        result = _cli(*args)
        assert result.returncode == 0, result.stderr
        assert "usage" in result.stdout
    assert "--port" in _cli("serve", "--help").stdout


def test_cli_db_upgrade_creates_tables(tmp_path: pathlib.Path) -> None:
    result = _cli("db", "upgrade", env={"CRYSTALLISE_DATA_DIR": str(tmp_path)})
    assert result.returncode == 0, result.stderr
    import sqlite3

    tables = {
        r[0]
        for r in sqlite3.connect(tmp_path / "crystallise.db").execute(
            "select name from sqlite_master"
        )
    }
    assert {
        "screening_jobs",
        "indexer_jobs",
        "job_items",
        "service_configs",
        "alembic_version",
    } <= tables


@pytest.mark.parametrize(
    ("name", "value", "said"),
    [
        ("CRYSTALLISE_MODEL_OVERRIDES", '{"m": {"context_window": "big"}}', "context_window"),
        ("CRYSTALLISE_MODEL_OVERRIDES", "not json", "not valid JSON"),
        ("CRYSTALLISE_STRUCTURED_OUTPUT", "xml", "json_object"),
    ],
)
def test_a_bad_setting_is_one_clear_line_not_a_traceback(name: str, value: str, said: str) -> None:
    result = _cli("serve", env={name: value})
    assert result.returncode == 2
    assert name in result.stderr and said in result.stderr and "Traceback" not in result.stderr
