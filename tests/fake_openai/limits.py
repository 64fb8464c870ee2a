"""Rate limits (token bucket or fixed window) and the state every route shares."""

from __future__ import annotations

import time
from collections import Counter, deque
from typing import Any

from tests.fake_openai.config import FakeConfig, Script


class Bucket:
    def __init__(self, per_minute: int, burst_s: float) -> None:
        self.rate = per_minute / 60.0
        self.capacity = max(1.0, self.rate * burst_s)
        self.tokens = self.capacity
        self.per_minute = per_minute
        self.stamp = time.monotonic()

    def refill(self) -> None:
        now = time.monotonic()
        self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now

    def take(self, amount: float) -> float:
        """0 if taken, else seconds until ``amount`` would be available."""
        self.refill()
        if self.tokens >= min(amount, self.capacity):
            self.tokens -= amount
            return 0.0
        return (min(amount, self.capacity) - self.tokens) / self.rate

    def remaining(self) -> int:
        self.refill()
        return max(0, int(self.tokens / self.capacity * self.per_minute))

    def reset_s(self) -> float:
        return (self.capacity - self.tokens) / self.rate


class Window:
    """Fixed windows of ``window_s`` seconds, each allowing ``per_minute / 60 × window_s``
    units: how providers enforce a per-minute limit over short windows."""

    def __init__(self, per_minute: int, window_s: float) -> None:
        self.per_minute = per_minute
        self.window_s = window_s
        self.allowance = max(1.0, per_minute / 60.0 * window_s)
        self.start = time.monotonic()
        self.index = 0
        self.used = 0.0

    def _roll(self) -> float:
        now = time.monotonic()
        index = int((now - self.start) / self.window_s)
        if index != self.index:
            self.index, self.used = index, 0.0
        return self.start + (index + 1) * self.window_s - now  # seconds left in this window

    def take(self, amount: float) -> float:
        """0 if taken, else seconds until the next window."""
        left = self._roll()
        if self.used + min(amount, self.allowance) <= self.allowance:
            self.used += amount
            return 0.0
        return left

    def remaining(self) -> int:
        self._roll()
        return max(0, int((self.allowance - self.used) / self.allowance * self.per_minute))

    def reset_s(self) -> float:
        return self._roll()


def _limit(cfg: FakeConfig, per_minute: int) -> Bucket | Window:
    return Window(per_minute, cfg.window_s) if cfg.window_s > 0 else Bucket(per_minute, cfg.burst_s)


def _duration(seconds: float) -> str:
    return f"{int(seconds * 1000)}ms" if seconds < 1 else f"{seconds:.3f}s"


STALE = 499  # answer to a call that outlived the test that made it (never counted)


class FakeState:
    def __init__(self) -> None:
        self.config = FakeConfig()
        self.reset()

    def reset(self) -> None:
        # bumped on every reset: a call still sleeping from an earlier test must not count here
        self.epoch = getattr(self, "epoch", 0) + 1
        self.scripts: list[Script] = []
        self.paid: Counter[tuple[str, str]] = Counter()
        self.calls: Counter[str] = Counter()
        self.statuses: Counter[int] = Counter()
        self.prompt_tokens = 0
        self.completion_tokens = 0
        self.cached_tokens = 0
        self.in_flight = 0
        self.peak_in_flight = 0
        self.max_prompt_tokens = 0
        self.requests: deque[dict[str, Any]] = deque(maxlen=5000)
        self.buckets: dict[tuple[str, str], Bucket | Window] = {}
        # prompt prefix digest -> when it entered the cache (when its first call completed)
        self.seen_prefixes: dict[str, float] = {}
        self.files: dict[str, dict[str, Any]] = {}
        self.file_content: dict[str, bytes] = {}
        self.batches: dict[str, dict[str, Any]] = {}
        self.vector_stores: dict[str, dict[str, Any]] = {}
        self.chat_count = 0
        # per response-format / tool name: [calls, choices, prompt_tokens, completion_tokens]
        self.by_kind: dict[str, list[int]] = {}

    def stats(self) -> dict[str, Any]:
        return {
            "calls": dict(self.calls),
            "statuses": {str(k): v for k, v in self.statuses.items()},
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "cached_tokens": self.cached_tokens,
            "peak_concurrency": self.peak_in_flight,
            "max_prompt_tokens": self.max_prompt_tokens,
            "by_kind": self.by_kind,
            # answered (paid) calls asking the same thing again, per response kind
            "repeated_paid": {
                kind: sum(n - 1 for (k, _), n in self.paid.items() if k == kind and n > 1)
                for kind in {k for k, _ in self.paid}
            },
        }
