"""Secure by default (issue 24, item 5): with no service key `crystallise serve` listens on
127.0.0.1 only and says so; an explicit host beyond loopback is obeyed with a loud warning;
/health/ready says whether auth is on."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import httpx

from tests.durability.test_crash_recovery import Proc, _env
from tests.durability.test_job_process import wait_healthy
from tests.fake_openai import FakeOpenAIServer, free_port


def _outward_address() -> str | None:
    """An address of this machine other than loopback (None on a machine without one)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("10.255.255.255", 1))  # no packet is sent for UDP connect
            address = str(probe.getsockname()[0])
        except OSError:
            return None
    return None if address.startswith("127.") else address


def _serve(tmp_path: Path, fake: FakeOpenAIServer, *extra: str, **env: str) -> tuple[Proc, int]:
    port = free_port()
    environment = _env(tmp_path, fake, **env)
    proc = Proc(["serve", "--port", str(port), *extra], environment, tmp_path / "serve.log")
    wait_healthy(f"http://127.0.0.1:{port}", tmp_path / "serve.log")
    return proc, port


def test_dev_mode_listens_on_loopback_only(tmp_path: Path, fake: FakeOpenAIServer) -> None:
    proc, port = _serve(tmp_path, fake)
    try:
        ready = httpx.get(f"http://127.0.0.1:{port}/health/ready", timeout=5).json()
        assert ready["checks"]["auth"] == "off (dev mode)"
        outward = _outward_address()
        if outward is not None:
            with socket.socket() as s:
                s.settimeout(2)
                assert s.connect_ex((outward, port)) != 0, "reachable beyond loopback"
    finally:
        proc.stop()
    log = (tmp_path / "serve.log").read_text()
    assert f"listening on 127.0.0.1:{port} (dev mode: no service key)" in log


def test_keys_listen_everywhere_and_an_explicit_open_host_warns(
    tmp_path: Path, fake: FakeOpenAIServer
) -> None:
    proc, port = _serve(tmp_path, fake, CRYSTALLISE_API_KEYS="k-one")
    try:
        ready = httpx.get(f"http://127.0.0.1:{port}/health/ready", timeout=5).json()
        assert ready["checks"]["auth"] == "on"
    finally:
        proc.stop()
    assert f"listening on 0.0.0.0:{port}\n" in (tmp_path / "serve.log").read_text()
    (tmp_path / "serve.log").unlink()
    time.sleep(0.2)
    proc, port = _serve(tmp_path, fake, "--host", "0.0.0.0")
    proc.stop()
    assert (
        "WARNING: listening on 0.0.0.0 with NO service key" in (tmp_path / "serve.log").read_text()
    )
