"""/docs and /redoc work on an offline network (issue 24, item 7): their assets are served
by the service itself (no CDN), and headless Chromium, with every host but 127.0.0.1
unresolvable, renders the operations."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import httpx
import pytest

from tests.durability.test_crash_recovery import Proc, _env
from tests.durability.test_job_process import wait_healthy
from tests.fake_openai import FakeOpenAIServer, free_port

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def test_docs_pages_reference_only_local_assets(client: object) -> None:
    for page in ("/docs", "/redoc"):
        html = client.get(page).text  # type: ignore[attr-defined]
        assert "cdn." not in html and "googleapis" not in html, html
        for asset in (
            ("swagger-ui-bundle.js", "swagger-ui.css")
            if page == "/docs"
            else ("redoc.standalone.js",)
        ):
            assert f"/docs-assets/{asset}" in html
            assert client.get(f"/docs-assets/{asset}").status_code == 200  # type: ignore[attr-defined]


@pytest.mark.skipif(
    CHROMIUM is None, reason="Debian's chromium is not installed (.ci/run installs it)"
)
def test_docs_render_in_headless_chromium_offline(tmp_path: Path, fake: FakeOpenAIServer) -> None:
    port = free_port()
    proc = Proc(["serve", "--port", str(port)], _env(tmp_path, fake), tmp_path / "serve.log")
    base = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(base, tmp_path / "serve.log")
        assert httpx.get(f"{base}/docs").status_code == 200
        offline = "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1"
        common = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", offline,
                  f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=15000"]  # fmt: skip
        dom = subprocess.run(
            [*common, "--dump-dom", f"{base}/docs"], capture_output=True, text=True, timeout=120
        ).stdout
        shot = tmp_path / "docs.png"
        subprocess.run(
            [*common, f"--screenshot={shot}", "--window-size=1280,2000", f"{base}/docs"],
            capture_output=True, timeout=120,
        )  # fmt: skip
    finally:
        proc.stop()
    assert "opblock" in dom and "/v1/screening/jobs" in dom, dom[-2000:]
    assert shot.exists() and shot.stat().st_size > 10_000
