"""Process-wide concurrency and pacing per provider, learned from x-ratelimit-* headers.

Fixed mode caps in-flight calls at ``max_concurrent_requests``. Adaptive mode (the default)
starts there and raises the cap while callers are waiting and the provider has headroom:
where the provider sends rate-limit headers, to the window that sustains its advertised rate
(Little's law); where it sends none (local servers), by additive increase while latency
stays near its best and multiplicative decrease on a 429 or when latency climbs (the server
is queueing). In both modes requests and tokens are paced to the advertised per-minute limits
with almost no burst, so limits enforced over 1-2 second windows are not overrun.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass

_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")
_UNIT_S = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
# Pace at this share of the advertised limit: headroom for clock skew and other clients.
PACING_SAFETY = 0.95
# Burst allowed above the paced rate, in seconds of it: providers enforce per-minute limits
# over short windows (1-2 s), where 0.95 + 0.02 of the rate still fits in a 1 s window.
PACING_BURST_S = 0.02
# Without rate headers: latency this many times the best seen means the server is queueing.
QUEUEING_LATENCY = 2.0
GROWTH_LATENCY = 1.5


def parse_duration(value: str) -> float | None:
    """Go-style durations as OpenAI sends them: ``1s``, ``6m0s``, ``120ms``."""
    parts = _DURATION.findall(value or "")
    if not parts:
        return None
    return sum(float(n) * _UNIT_S[u] for n, u in parts)


class Pacer:
    """GCRA pacing: at most ``rate`` units per second with ``burst_s`` seconds of burst."""

    def __init__(self, burst_s: float = PACING_BURST_S) -> None:
        self.rate: float | None = None
        self.burst_s = burst_s
        self._tat = 0.0  # theoretical arrival time of the next unit
        self._lock = asyncio.Lock()

    async def take(self, units: float = 1.0) -> None:
        if not self.rate:
            return
        async with self._lock:
            now = time.monotonic()
            interval = units / self.rate
            start = max(self._tat, now)
            self._tat = start + interval
            wait = start - now - self.burst_s
        if wait > 0:
            await asyncio.sleep(wait)


@dataclass
class LimiterStats:
    peak_in_flight: int = 0
    rate_limited: int = 0
    calls: int = 0


class ProviderLimiter:
    """Shared by every job in the process that calls one (endpoint, key, model)."""

    def __init__(self, base_concurrency: int, *, adaptive: bool, max_concurrency: int) -> None:
        self.adaptive = adaptive
        self.max = max_concurrency if adaptive else base_concurrency
        self.base = min(base_concurrency, self.max)
        self.limit = self.base
        self.in_flight = 0
        self.waiting = 0
        self.requests = Pacer()
        self.tokens = Pacer()
        self.stats = LimiterStats()
        self._paused_until = 0.0
        self._cond = asyncio.Condition()
        self._low_headroom = False
        self._latency_s: float | None = None  # EWMA of call latency
        self._best_latency_s: float | None = None
        self._congested = False  # seen a 429 or queueing: grow by one per window, not per call
        self._growth = 0.0
        self._next_decrease = 0.0
        self.last_success = 0.0  # time.monotonic() of the last answered call (not a 429)

    @asynccontextmanager
    async def slot(self, est_tokens: int = 0) -> AsyncIterator[None]:
        """Hold one in-flight slot, paced by learned request and token rates."""
        async with self._cond:
            self.waiting += 1
            try:
                await self._cond.wait_for(lambda: self.in_flight < self.limit)
            finally:
                self.waiting -= 1
            self.in_flight += 1
            self.stats.peak_in_flight = max(self.stats.peak_in_flight, self.in_flight)
        try:
            pause = self._paused_until - time.monotonic()
            if pause > 0:
                await asyncio.sleep(pause)
            await self.requests.take(1)
            if est_tokens:
                await self.tokens.take(est_tokens)
            started = time.monotonic()
            yield
            self._observe_latency(time.monotonic() - started)
        finally:
            async with self._cond:
                self.in_flight -= 1
                # wake only as many waiters as there are free slots (no thundering herd)
                self._cond.notify(max(1, self.limit - self.in_flight))

    def observe(self, headers: Mapping[str, str] | None, status: int) -> None:
        """Learn from one response: headers set pacing; 429 backs off, success may grow."""
        self.stats.calls += 1
        if status < 400:
            self.last_success = time.monotonic()
        if headers:
            self._learn(headers)
        if status == 429:
            self.stats.rate_limited += 1
            self.on_rate_limited(None)
        elif status < 400 and self.adaptive and self.waiting > 0 and self._may_grow():
            self._growth += 1.0 / self.limit if self._congested else 1.0
            if self._growth >= 1.0:
                self._growth -= 1.0
                self.limit += 1
                self._wake()

    def _may_grow(self) -> bool:
        if self._low_headroom or self.limit >= self.max:
            return False
        if self.requests.rate is not None or not self._best_latency_s or not self._latency_s:
            return True  # paced by headers (or nothing measured yet)
        return self._latency_s <= self._best_latency_s * GROWTH_LATENCY

    def _observe_latency(self, elapsed: float) -> None:
        """EWMA of latency; without rate headers, a climb past QUEUEING_LATENCY × the best
        seen shrinks the window (at most once per latency period)."""
        self._latency_s = (
            elapsed if self._latency_s is None else 0.8 * self._latency_s + 0.2 * elapsed
        )
        self._best_latency_s = min(self._best_latency_s or elapsed, elapsed)
        now = time.monotonic()
        if (
            self.adaptive
            and self.requests.rate is None
            and self._latency_s > self._best_latency_s * QUEUEING_LATENCY
            and now >= self._next_decrease
        ):
            self._shrink(now)

    def _shrink(self, now: float) -> None:
        self._congested = True
        self.limit = max(1, int(self.limit * 0.75))
        self._next_decrease = now + (self._latency_s or 0.0)

    def on_rate_limited(self, retry_after_s: float | None) -> None:
        """A 429: shrink the window and pause everyone briefly instead of retrying in a storm."""
        now = time.monotonic()
        if self.adaptive and now >= self._next_decrease:
            self._shrink(now)
        if self.requests.rate:
            self.requests.rate *= 0.9
        if retry_after_s:
            self._paused_until = max(self._paused_until, time.monotonic() + retry_after_s)

    def _learn(self, headers: Mapping[str, str]) -> None:
        rpm = _int(headers.get("x-ratelimit-limit-requests"))
        tpm = _int(headers.get("x-ratelimit-limit-tokens"))
        if rpm:
            self.requests.rate = rpm / 60.0 * PACING_SAFETY
            if self.adaptive and self._latency_s and not self._low_headroom:
                # Little's law: the window that sustains the paced rate at this latency.
                needed = int(self.requests.rate * self._latency_s * 1.25) + 1
                if needed > self.limit:
                    self.limit = min(self.max, needed)
                    self._wake()
        if tpm:
            self.tokens.rate = tpm / 60.0 * PACING_SAFETY
        remaining = _int(headers.get("x-ratelimit-remaining-requests"))
        self._low_headroom = bool(rpm and remaining is not None and remaining < rpm * 0.05)

    def _wake(self) -> None:
        async def _notify() -> None:
            async with self._cond:
                self._cond.notify(max(1, self.limit - self.in_flight))

        try:
            asyncio.get_running_loop().create_task(_notify())
        except RuntimeError:
            pass


def _int(value: str | None) -> int | None:
    try:
        return int(float(value)) if value is not None else None
    except ValueError:
        return None
