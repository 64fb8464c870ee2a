"""Error taxonomy, cost, capabilities and pacing: pure units."""

from __future__ import annotations

import asyncio
import time
from datetime import date

import httpx2
import openai
import pytest

from crystallise.config.model_capabilities import (
    MODEL_CAPABILITIES,
    shutdown_warnings,
    validate_request,
)
from crystallise.llm.cost import DEFAULT_PRICING_PER_1M, UsageTally, estimate_cost, tally_usage
from crystallise.llm.errors import ErrorCategory, LLMError, classify_openai_error, to_llm_error
from crystallise.llm.ratelimit import Pacer, ProviderLimiter, parse_duration
from crystallise.llm.tokens import count_message_tokens, count_tokens

_REQ = httpx2.Request("POST", "http://x/v1/chat/completions")


def _status_error(cls: type[openai.APIStatusError], status: int) -> openai.APIStatusError:
    return cls("msg", response=httpx2.Response(status, request=_REQ), body={"message": "m"})


@pytest.mark.parametrize(
    ("exc", "category", "retryable", "http"),
    [
        (openai.APIConnectionError(request=_REQ), ErrorCategory.TRANSIENT, True, 500),
        (openai.APITimeoutError(request=_REQ), ErrorCategory.TIMEOUT, True, 500),
        (_status_error(openai.InternalServerError, 503), ErrorCategory.TRANSIENT, True, 500),
        (_status_error(openai.RateLimitError, 429), ErrorCategory.RATE_LIMIT, True, 429),
        (_status_error(openai.AuthenticationError, 401), ErrorCategory.AUTH, False, 401),
        (_status_error(openai.PermissionDeniedError, 403), ErrorCategory.AUTH, False, 401),
        (_status_error(openai.BadRequestError, 400), ErrorCategory.VALIDATION, False, 400),
        (_status_error(openai.NotFoundError, 404), ErrorCategory.VALIDATION, False, 400),
        (_status_error(openai.APIStatusError, 502), ErrorCategory.TRANSIENT, True, 500),
        (_status_error(openai.APIStatusError, 429), ErrorCategory.RATE_LIMIT, True, 429),
        (_status_error(openai.APIStatusError, 403), ErrorCategory.AUTH, False, 401),
        (_status_error(openai.APIStatusError, 400), ErrorCategory.VALIDATION, False, 400),
        (ValueError("x"), ErrorCategory.UNKNOWN, False, 500),
    ],
)
def test_classification_table(
    exc: Exception, category: ErrorCategory, retryable: bool, http: int
) -> None:
    assert classify_openai_error(exc) is category
    err = to_llm_error(exc)
    assert err.retryable is retryable and err.http_status == http
    assert err.to_detail() == {
        "message": err.message,
        "error_code": category.value,
        "retryable": retryable,
    }


def test_llm_error_messages_are_scrubbed() -> None:
    err = LLMError("bad key sk-proj-abcdefghijklmnop", ErrorCategory.AUTH)
    assert "sk-proj" not in err.message


def test_pricing_rows_and_estimate() -> None:
    for model in (
        "gpt-5-nano",
        "gpt-5-mini",
        "gpt-4.1",
        "gpt-4.1-mini",
        "gpt-5.4-nano",
        "gpt-5.4-mini",
        "gpt-5.4",
    ):
        assert set(DEFAULT_PRICING_PER_1M[model]) == {"input", "cached_input", "output"}
    assert estimate_cost("gpt-5-nano", 1_000_000, 1_000_000) == pytest.approx(0.45)
    assert estimate_cost("gpt-4.1-2025-04-14", 1_000_000, 0) == pytest.approx(2.0)
    assert estimate_cost("gpt-4.1", 1_000_000, 0, cached_input_tokens=1_000_000) == pytest.approx(
        0.5
    )


def test_tally_usage_shape_and_cached_rate() -> None:
    usage = [
        {
            "prompt_tokens": 2000,
            "completion_tokens": 100,
            "prompt_tokens_details": {"cached_tokens": 1024},
        },
        {"input_tokens": 300, "output_tokens": 50},
        None,
    ]
    out = tally_usage("gpt-5-mini", usage)
    assert set(out) == {"input_tokens", "output_tokens", "total_tokens", "estimated_cost_usd"}
    assert (out["input_tokens"], out["output_tokens"], out["total_tokens"]) == (2300, 150, 2450)
    expected = ((2300 - 1024) * 0.25 + 1024 * 0.025 + 150 * 2.0) / 1e6
    assert out["estimated_cost_usd"] == pytest.approx(expected, abs=1e-6)
    tally = UsageTally()
    tally.add("gpt-5-mini", usage[0])
    tally.add("gpt-4.1", usage[1])
    restored = UsageTally()
    restored.merge_dict(tally.to_dict())
    assert restored.summary() == tally.summary() and tally.summary()["calls"] == 2


def test_tokenizer_is_real_o200k_offline() -> None:
    assert count_tokens("hello world") == 2  # o200k_base: [24912, 2375]
    assert count_message_tokens([{"role": "user", "content": "hello world"}]) > 2


def test_capability_table_shutdowns() -> None:
    assert MODEL_CAPABILITIES["gpt-5-nano"].shutdown_date == date(2026, 12, 11)
    assert MODEL_CAPABILITIES["gpt-5-mini"].shutdown_date == date(2026, 12, 11)
    assert MODEL_CAPABILITIES["gpt-4.1"].shutdown_date == date(2027, 1, 14)
    warnings, past = shutdown_warnings({"screening": "gpt-5-nano"}, today=date(2026, 11, 21))
    assert len(warnings) == 1 and not past
    assert shutdown_warnings({"x": "gpt-4.1"}, today=date(2026, 11, 21)) == ([], False)


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"model": "gpt-5-nano", "temperature": 0.2}, "temperature"),
        ({"model": "gpt-5-nano", "input_tokens": 300_000}, "input tokens"),
        ({"model": "gpt-4.1", "max_output_tokens": 100_000}, "max_output_tokens"),
        ({"model": "gpt-5-nano", "today": date(2026, 12, 11)}, "shut down"),
        ({"model": "gpt-5-mini", "n": 3}, "n=3"),
        ({"model": "gpt-4.1", "reasoning_effort": "low"}, "reasoning_effort"),
        ({"model": "llama3"}, "Unknown model"),
    ],
)
def test_validate_request_rejects(kwargs: dict[str, object], needle: str) -> None:
    with pytest.raises(LLMError) as info:
        validate_request(**kwargs)  # type: ignore[arg-type]
    assert info.value.category is ErrorCategory.VALIDATION and needle in info.value.message


def test_validate_request_accepts() -> None:
    validate_request(
        "gpt-4.1", temperature=0.2, n=5, input_tokens=500_000, today=date(2026, 11, 21)
    )
    validate_request("gpt-5-nano", reasoning_effort="minimal", today=date(2026, 11, 21))
    validate_request("llama3", allow_unknown=True)


def test_parse_duration() -> None:
    assert parse_duration("6m0s") == 360 and parse_duration("120ms") == pytest.approx(0.12)
    assert parse_duration("1.5s") == 1.5 and parse_duration("") is None


async def test_pacer_spaces_units() -> None:
    pacer = Pacer(burst_s=0.0)
    pacer.rate = 50.0
    start = time.monotonic()
    for _ in range(11):
        await pacer.take()
    assert time.monotonic() - start == pytest.approx(0.2, abs=0.08)


async def test_adaptive_limiter_grows_learns_and_backs_off() -> None:
    limiter = ProviderLimiter(2, adaptive=True, max_concurrency=20)

    async def call() -> None:
        async with limiter.slot():
            await asyncio.sleep(0.01)
        limiter.observe(
            {"x-ratelimit-limit-requests": "60000", "x-ratelimit-remaining-requests": "59000"}, 200
        )

    await asyncio.gather(*(call() for _ in range(60)))
    assert limiter.limit > 2 and limiter.stats.peak_in_flight > 2
    assert limiter.requests.rate == pytest.approx(60000 / 60 * 0.95)
    before = limiter.limit
    limiter.observe(None, 429)
    assert limiter.limit < before and limiter.stats.rate_limited == 1

    fixed = ProviderLimiter(3, adaptive=False, max_concurrency=50)

    async def fixed_call() -> None:
        async with fixed.slot():
            await asyncio.sleep(0.01)
        fixed.observe({}, 200)

    await asyncio.gather(*(fixed_call() for _ in range(30)))
    assert fixed.limit == 3 and fixed.stats.peak_in_flight == 3
