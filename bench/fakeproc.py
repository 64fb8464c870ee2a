"""Start the fake OpenAI server in its own process (so its CPU is not the client's)."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from crystallise.config.settings import Settings
from tests.fake_openai import free_port


def bench_settings(url: str, **overrides: Any) -> Settings:
    """Settings for a job run in the bench's own process against the fake at ``url``: a
    throw-away data folder, the in-process runner, no .env file, quiet logs."""
    values: dict[str, Any] = {
        "openai_base_url": url,
        "openai_api_key": "sk-bench-000000000000",
        "data_dir": tempfile.mkdtemp(),
        "job_queue": "inprocess",
        "log_level": "WARNING",
        **overrides,
    }
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


class FakeProcess:
    def __init__(self, port: int) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}/v1"

    def _post(self, path: str, body: dict[str, Any]) -> Any:
        req = urllib.request.Request(
            f"http://127.0.0.1:{self.port}{path}",
            data=json.dumps(body).encode(),
            headers={"content-type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(req, timeout=10) as resp:
            return json.loads(resp.read())

    def reset(self, **config: Any) -> None:
        self._post("/_fake/reset", {})
        if config:
            self._post("/_fake/config", config)

    def stats(self) -> dict[str, Any]:
        with urllib.request.urlopen(
            f"http://127.0.0.1:{self.port}/_fake/stats", timeout=10
        ) as resp:
            return dict(json.loads(resp.read()))


@contextmanager
def fake_server() -> Iterator[FakeProcess]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "tests.fake_openai", "--port", str(port)])
    fake = FakeProcess(port)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                fake.stats()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        yield fake
    finally:
        proc.terminate()
        proc.wait(timeout=10)
