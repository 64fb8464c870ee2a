"""The fake on a real port in a background thread (tests) or alone (benchmarks)."""

from __future__ import annotations

import argparse
import socket
import threading
import time
from typing import Any

import uvicorn

from tests.fake_openai.app import FakeOpenAI
from tests.fake_openai.config import FakeConfig, Script
from tests.fake_openai.limits import FakeState


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class FakeOpenAIServer:
    """Runs :class:`FakeOpenAI` under uvicorn in a background thread on 127.0.0.1."""

    def __init__(self, port: int | None = None) -> None:
        self.fake = FakeOpenAI()
        self.port = port or free_port()
        self._server = uvicorn.Server(
            uvicorn.Config(
                self.fake.app,
                host="127.0.0.1",
                port=self.port,
                log_level="warning",
                lifespan="off",
            )
        )
        self._thread = threading.Thread(target=self._server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def state(self) -> FakeState:
        return self.fake.state

    def start(self) -> FakeOpenAIServer:
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("fake OpenAI server did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=5)

    def configure(self, **changes: Any) -> None:
        for k, v in changes.items():
            setattr(self.fake.state.config, k, v)

    def reset(self) -> None:
        self.fake.state.reset()
        self.fake.state.config = FakeConfig()
        self.fake._fault_rng = None  # faults replay from fault_seed after every reset

    def script(
        self,
        content: Any = None,
        *,
        tool_arguments: dict[str, Any] | None = None,
        match: str = "",
        times: int = 1,
    ) -> None:
        self.fake.state.scripts.append(Script(content, tool_arguments, match, times))

    def requests(self, kind: str = "chat") -> list[dict[str, Any]]:
        return [r for r in self.fake.state.requests if r["kind"] == kind]


def main() -> None:
    parser = argparse.ArgumentParser(description="Fake OpenAI-compatible server")
    parser.add_argument("--port", type=int, default=8099)
    parser.add_argument("--latency", type=float, default=0.0)
    parser.add_argument("--rpm", type=int, default=None)
    parser.add_argument("--tpm", type=int, default=None)
    parser.add_argument(
        "--window", type=float, default=0.0, help="enforce limits per N-second window"
    )
    parser.add_argument("--context-limit", type=int, default=None)
    args = parser.parse_args()
    fake = FakeOpenAI()
    fake.state.config.latency_s = args.latency
    fake.state.config.rpm = args.rpm
    fake.state.config.tpm = args.tpm
    fake.state.config.window_s = args.window
    fake.state.config.context_limit = args.context_limit
    uvicorn.run(fake.app, host="127.0.0.1", port=args.port, log_level="warning", lifespan="off")
