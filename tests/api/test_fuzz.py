"""Property-based fuzzing of the service's own OpenAPI schema (issue 12): schemathesis
generates requests for every operation, sent over real HTTP to the app served by uvicorn
(lifespan on, fake provider behind it), on SQLite and PostgreSQL, with a fixed seed and a
random one. Any 5xx, or a response that does not match its declared schema, fails."""

from __future__ import annotations

import os
import random
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn

from crystallise.api.app import create_app
from tests.conftest import make_settings
from tests.fake_openai import FakeOpenAIServer, free_port

MAX_EXAMPLES = int(os.environ.get("CRYSTALLISE_FUZZ_EXAMPLES", "15"))
FUZZ_TIMEOUT_S = 240
FIXED_SEED = 20261203
RANDOM_SEED = random.SystemRandom().randrange(2**31)


@pytest.fixture(params=["fixed", "random"])
def seed(request: pytest.FixtureRequest) -> int:
    value = FIXED_SEED if request.param == "fixed" else RANDOM_SEED
    print(f"schemathesis seed: {value}")  # shown on failure: rerun with it
    return value


@pytest.fixture
def served(tmp_path: Path, fake: FakeOpenAIServer, database_url: str) -> Iterator[str]:
    """The app on a free loopback port, as `crystallise serve` runs it."""
    # jobs run in this process on both databases (no separate worker here), so a generated
    # request that streams a job's events ends when the job does
    settings = make_settings(
        tmp_path, fake, database_url=database_url, sync_timeout_s=20, job_queue="inprocess"
    )
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started, "server did not start"
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=30)


def test_no_5xx_and_responses_match_schema(served: str, seed: int, tmp_path: Path) -> None:
    """schemathesis's own runner (every phase: examples, boundary coverage, fuzzing,
    stateful links), bounded in examples and time."""
    report = tmp_path / "fuzz.txt"
    command = [
        sys.executable,
        "-m",
        "schemathesis.cli",
        "run",
        f"{served}/openapi.json",
        "--checks",
        "not_a_server_error,response_schema_conformance",
        "--max-examples",
        str(MAX_EXAMPLES),
        "--seed",
        str(seed),
        "--request-timeout",
        "30",
        "--suppress-health-check",
        "all",
        "--no-color",
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=FUZZ_TIMEOUT_S)
    report.write_text(done.stdout + done.stderr)
    assert done.returncode == 0, f"seed {seed}:\n{done.stdout[-8000:]}\n{done.stderr[-2000:]}"
