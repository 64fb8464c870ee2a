"""What both evaluations share: the configured endpoint, or the bundled fake server."""

from __future__ import annotations

import pathlib
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager

from crystallise.config.settings import Settings


@contextmanager
def eval_settings(fake: bool) -> Iterator[Settings]:
    """Settings for the configured endpoint (env/.env), or for a fake server started here."""
    data_dir = pathlib.Path(tempfile.mkdtemp(prefix="crystallise-eval-"))
    if not fake:
        yield Settings(data_dir=data_dir)  # type: ignore[call-arg]
        return
    from tests.fake_openai import FakeOpenAIServer

    server = FakeOpenAIServer().start()
    try:
        yield Settings(
            _env_file=None,  # type: ignore[call-arg]
            openai_base_url=server.url,
            openai_api_key="sk-fake-eval-0000",
            data_dir=data_dir,
            retry_delays=[0.01],
            log_level="WARNING",
        )
    finally:
        server.stop()


FAKE_NOTE = (
    "NOTE: run against the fake OpenAI server: {what} are random, so these figures mean nothing."
)
