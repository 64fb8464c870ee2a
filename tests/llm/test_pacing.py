"""Pacing on default settings against limits enforced as providers enforce them: per-minute
limits over 1-2 second windows (with x-ratelimit-* headers), and a local server with no
headers whose latency climbs when it queues (issue 14)."""

from __future__ import annotations

import asyncio

import pytest
from pydantic import BaseModel

from crystallise.llm.client import LLMClient
from crystallise.llm.ratelimit import ProviderLimiter
from tests.conftest import make_settings
from tests.fake_openai import FakeOpenAIServer

MESSAGES = [{"role": "user", "content": "Is this a randomised trial? <paper>x</paper>"}]


class Verdict(BaseModel):
    verdict: str


def test_adaptive_pacing_is_the_default(tmp_path: object) -> None:
    assert make_settings(tmp_path).adaptive_concurrency is True


@pytest.mark.parametrize("window_s", [1.0, 2.0])
async def test_windowed_limits_are_not_overrun(
    tmp_path: object, fake: FakeOpenAIServer, window_s: float
) -> None:
    """6,000 RPM over 1 s or 2 s windows (100 or 200 calls per window), 0.2 s latency, more
    callers than the limit allows: under 1% of attempts answered 429."""
    fake.state.config.rpm = 6000
    fake.state.config.window_s = window_s
    fake.state.config.latency_s = 0.2
    llm = LLMClient(make_settings(tmp_path, fake))  # default settings: adaptive pacing
    try:
        await asyncio.gather(
            *(llm.chat(MESSAGES, model="gpt-4.1-mini", output_schema=Verdict) for _ in range(500))
        )
    finally:
        await llm.aclose()
    attempts = sum(fake.state.statuses.values())
    assert fake.state.statuses[200] == 500
    assert fake.state.statuses[429] / attempts < 0.01, dict(fake.state.statuses)


async def test_without_headers_the_window_follows_latency() -> None:
    """A local server with 4 slots and no rate headers: latency climbs once more than 4 calls
    are in flight; the window settles near the slots instead of growing to the ceiling."""
    limiter = ProviderLimiter(2, adaptive=True, max_concurrency=64)
    server = asyncio.Semaphore(4)

    async def call() -> None:
        async with limiter.slot(), server:  # queueing at the server shows up as latency
            await asyncio.sleep(0.01)
        limiter.observe({}, 200)

    await asyncio.gather(*(call() for _ in range(600)))
    assert 4 <= limiter.stats.peak_in_flight <= 24, limiter.stats
    assert limiter.limit <= 24


async def test_a_burst_of_429s_shrinks_the_window_once() -> None:
    limiter = ProviderLimiter(20, adaptive=True, max_concurrency=64)
    async with limiter.slot():
        await asyncio.sleep(0.05)
    for _ in range(10):
        limiter.observe({}, 429)
    assert limiter.limit == 15 and limiter.stats.rate_limited == 10
