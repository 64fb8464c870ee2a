"""Retry with backoff (§4.2): retryable categories only, honouring the provider's retry-after."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from email.utils import parsedate_to_datetime
from typing import Any, TypeVar

from crystallise.common.logging import get_logger
from crystallise.llm.errors import LLMError, to_llm_error

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


async def async_retry_with_backoff(
    call: Callable[[], Awaitable[T]],
    *,
    delays: Sequence[float] = ASYNC_DELAYS,
    on_retry: Callable[[LLMError, int, float], None] | None = None,
    passthrough: tuple[type[BaseException], ...] = (),
) -> T:
    """Await ``call()``; on a retryable failure wait and try again, ``len(delays)`` times.

    Exceptions in ``passthrough`` propagate unchanged (the caller handles them).
    """
    attempt = 0
    while True:
        try:
            return await call()
        except asyncio.CancelledError:
            raise
        except passthrough:
            raise
        except Exception as exc:
            error = to_llm_error(exc)
            if not error.retryable or attempt >= len(delays):
                raise error from exc
            # a provider's hint may lengthen the backoff, never shorten it: a burst of 429s
            # with "retry-after-ms: 100" must not exhaust the retries in a second
            hint = retry_after_seconds(exc)
            delay = delays[attempt] if hint is None else max(hint, delays[attempt])
            attempt += 1
            if on_retry:
                on_retry(error, attempt, delay)
            log.info(
                "llm_retry",
                attempt=attempt,
                delay_s=delay,
                category=error.category.value,
            )
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
