"""Retry with backoff (§4.2): retryable categories only, honouring the provider's retry-after."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any, TypeVar

from crystallise.common.logging import get_logger
from crystallise.llm.errors import ErrorCategory, LLMError, to_llm_error

T = TypeVar("T")
log = get_logger(__name__)

ASYNC_DELAYS: tuple[float, ...] = (2.0, 8.0, 30.0)
SYNC_MAX_RETRIES = 5
SYNC_BASE_BACKOFF = 1.5
SYNC_JITTER = 0.25
MAX_RETRY_AFTER_S = 120.0


def retry_after_seconds(exc: BaseException) -> float | None:
    """Seconds the provider asked us to wait (``retry-after-ms`` wins over ``retry-after``)."""
    if isinstance(exc, LLMError) and exc.retry_after_s is not None:
        return exc.retry_after_s
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None)
    if headers is None:
        return None
    try:
        if (ms := headers.get("retry-after-ms")) is not None:
            return min(float(ms) / 1000.0, MAX_RETRY_AFTER_S)
        if (value := headers.get("retry-after")) is not None:
            try:
                return min(float(value), MAX_RETRY_AFTER_S)
            except ValueError:
                when = parsedate_to_datetime(value)
                return min(max(0.0, when.timestamp() - time.time()), MAX_RETRY_AFTER_S)
    except (TypeError, ValueError):
        return None
    return None


@dataclass
class Patience:
    """How long calls wait out continuous rate limiting: ``seconds`` since the later of the
    call's first 429 and the last success on the same limiter (``last_success``)."""

    seconds: float
    last_success: Callable[[], float] = lambda: 0.0


def _rate_limited(error: LLMError) -> bool:
    return error.category is ErrorCategory.RATE_LIMIT and not error.job_wide


def _out_of_patience(error: LLMError, patience: Patience) -> LLMError:
    return LLMError(
        f"{error.message} - rate limited without a success for {patience.seconds:g} s "
        "(CRYSTALLISE_RATE_LIMIT_PATIENCE_S); retry the job once the limit has lifted",
        ErrorCategory.RATE_LIMIT,
        job_wide=True,
    )


@dataclass
class _Tries:
    """Where one call stands: retries used, 429s waited out, when its rate limiting began."""

    delays: Sequence[float]
    patience: Patience | None
    attempt: int = 0
    limited: int = 0
    since: float = 0.0

    def next_delay(self, error: LLMError, exc: BaseException) -> float | None:
        """Seconds to wait before the next try; None: give up (raise ``error``)."""
        if error.job_wide or not error.retryable:
            return None
        if self.patience is not None and _rate_limited(error):
            now = time.monotonic()
            self.since = self.since or now
            if now - max(self.since, self.patience.last_success()) > self.patience.seconds:
                raise _out_of_patience(error, self.patience) from exc
            step = min(self.limited, len(self.delays) - 1)
            self.limited += 1
        elif self.attempt >= len(self.delays):
            return None
        else:
            step = self.attempt
            self.attempt += 1
        # a provider's hint may lengthen the backoff, never shorten it: a burst of 429s
        # with "retry-after-ms: 100" must not exhaust the retries in a second
        base = self.delays[step] if self.delays else 1.0
        hint = retry_after_seconds(exc)
        return base if hint is None else max(hint, base)


async def async_retry_with_backoff(
    call: Callable[[], Awaitable[T]],
    *,
    delays: Sequence[float] = ASYNC_DELAYS,
    on_retry: Callable[[LLMError, int, float], None] | None = None,
    passthrough: tuple[type[BaseException], ...] = (),
    patience: Patience | None = None,
) -> T:
    """Await ``call()``; on a retryable failure wait and try again, ``len(delays)`` times.

    With ``patience``, a 429 does not use up a retry: it is waited out (the delays again,
    the provider's hint when longer) until rate limiting has lasted ``patience.seconds``
    with no success on the limiter, then raised as a job-wide ``rate_limit`` error.
    ``insufficient_quota`` (job-wide) is raised at once. Exceptions in ``passthrough``
    propagate unchanged (the caller handles them).
    """
    tries = _Tries(delays, patience)
    while True:
        try:
            return await call()
        except asyncio.CancelledError:
            raise
        except passthrough:
            raise
        except Exception as exc:
            error = to_llm_error(exc)
            delay = tries.next_delay(error, exc)
            if delay is None:
                raise error from exc
            count = tries.attempt + tries.limited
            if on_retry:
                on_retry(error, count, delay)
            log.info("llm_retry", attempt=count, delay_s=delay, category=error.category.value)
            await asyncio.sleep(delay)


def retry_with_backoff(
    call: Callable[[], T],
    *,
    max_retries: int = SYNC_MAX_RETRIES,
    base_backoff: float = SYNC_BASE_BACKOFF,
    jitter: float = SYNC_JITTER,
    sleep: Callable[[float], Any] = time.sleep,
) -> T:
    """Synchronous twin for file/vector-store operations: ``base**attempt + U(0, jitter)``."""
    attempt = 0
    while True:
        try:
            return call()
        except Exception as exc:
            error = to_llm_error(exc)
            if not error.retryable or attempt >= max_retries:
                raise error from exc
            backoff = base_backoff**attempt + random.uniform(0, jitter)
            hint = retry_after_seconds(exc)
            delay = backoff if hint is None else max(hint, backoff)
            attempt += 1
            sleep(delay)
