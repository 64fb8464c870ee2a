"""What each model can do, and the pre-flight check every call goes through (§10.3)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime

from crystallise.llm.errors import ErrorCategory, LLMError


@dataclass(frozen=True)
class ModelCapabilities:
    name: str
    context_window: int
    max_input_tokens: int
    max_output_tokens: int
    supports_temperature: bool
    supports_structured_output: bool = True
    supports_tools: bool = True
    # n > 1 is undocumented for gpt-5 models: treated as unsupported (one call per repetition)
    supports_n: bool = False
    reasoning_efforts: tuple[str, ...] = ()
    shutdown_date: date | None = None
    successor: str | None = None


_GPT5_EFFORTS = ("minimal", "low", "medium", "high")
_GPT54_EFFORTS = ("none", "low", "medium", "high", "xhigh")

MODEL_CAPABILITIES: dict[str, ModelCapabilities] = {
    m.name: m
    for m in (
        ModelCapabilities(
            "gpt-5-nano",
            400_000,
            272_000,
            128_000,
            False,
            reasoning_efforts=_GPT5_EFFORTS,
            shutdown_date=date(2026, 12, 11),
            successor="gpt-5.4-nano",
        ),
        ModelCapabilities(
            "gpt-5-mini",
            400_000,
            272_000,
            128_000,
            False,
            reasoning_efforts=_GPT5_EFFORTS,
            shutdown_date=date(2026, 12, 11),
            successor="gpt-5.4-mini",
        ),
        ModelCapabilities(
            "gpt-4.1",
            1_047_576,
            1_047_576 - 32_768,
            32_768,
            True,
            supports_n=True,
            shutdown_date=date(2027, 1, 14),
            successor="gpt-5.4",
        ),
        ModelCapabilities(
            "gpt-4.1-mini",
            1_047_576,
            1_047_576 - 32_768,
            32_768,
            True,
            supports_n=True,
            shutdown_date=date(2027, 1, 14),
            successor="gpt-5.4-mini",
        ),
        ModelCapabilities(
            "gpt-5.4-nano",
            400_000,
            272_000,
            128_000,
            False,
            reasoning_efforts=_GPT54_EFFORTS,
            shutdown_date=date(2027, 4, 1),
            successor="gpt-5.4-mini",
        ),
        ModelCapabilities(
            "gpt-5.4-mini",
            400_000,
            272_000,
            128_000,
            False,
            reasoning_efforts=_GPT54_EFFORTS,
        ),
        ModelCapabilities(
            "gpt-5.4",
            1_050_000,
            922_000,
            128_000,
            False,
            reasoning_efforts=_GPT54_EFFORTS,
        ),
    )
}

# Models outside the table (local servers) when CRYSTALLISE_ALLOW_UNKNOWN_MODELS is on.
UNKNOWN_MODEL_CAPABILITIES = ModelCapabilities(
    "custom", 128_000, 120_000, 16_384, True, supports_n=False
)


def get_capabilities(model: str, *, allow_unknown: bool = False) -> ModelCapabilities:
    """Capabilities of ``model`` (dated snapshots resolve to their base model)."""
    if model in MODEL_CAPABILITIES:
        return MODEL_CAPABILITIES[model]
    for name in sorted(MODEL_CAPABILITIES, key=len, reverse=True):
        if model.startswith(name + "-20"):
            return MODEL_CAPABILITIES[name]
    if allow_unknown:
        return UNKNOWN_MODEL_CAPABILITIES
    known = ", ".join(MODEL_CAPABILITIES)
    raise LLMError(
        f"Unknown model '{model}'. Use one of: {known} "
        "(or set CRYSTALLISE_ALLOW_UNKNOWN_MODELS=true for a custom OpenAI-compatible server).",
        ErrorCategory.VALIDATION,
    )


def today_utc() -> date:
    return datetime.now(UTC).date()


def validate_request(
    model: str,
    *,
    input_tokens: int = 0,
    max_output_tokens: int | None = None,
    temperature: float | None = None,
    structured_output: bool = False,
    tools: bool = False,
    n: int = 1,
    reasoning_effort: str | None = None,
    allow_unknown: bool = False,
    today: date | None = None,
) -> ModelCapabilities:
    """Fail fast, as a ``validation`` LLMError naming problem and fix, if ``model`` can't serve this."""
    caps = get_capabilities(model, allow_unknown=allow_unknown)
    day = today or today_utc()
    if caps.shutdown_date and day >= caps.shutdown_date:
        raise LLMError(
            f"Model '{model}' was shut down on {caps.shutdown_date.isoformat()}; "
            f"use '{caps.successor}' instead.",
            ErrorCategory.VALIDATION,
        )
    if input_tokens > caps.max_input_tokens:
        raise LLMError(
            f"Request has ~{input_tokens} input tokens but '{model}' accepts at most "
            f"{caps.max_input_tokens}; send fewer or shorter texts.",
            ErrorCategory.VALIDATION,
        )
    if max_output_tokens is not None and max_output_tokens > caps.max_output_tokens:
        raise LLMError(
            f"max_output_tokens={max_output_tokens} exceeds '{model}' limit of "
            f"{caps.max_output_tokens}; lower it.",
            ErrorCategory.VALIDATION,
        )
    if temperature is not None and not caps.supports_temperature and temperature != 1:
        raise LLMError(
            f"'{model}' only supports the default temperature (1); omit temperature "
            "or use a model such as gpt-4.1.",
            ErrorCategory.VALIDATION,
        )
    if structured_output and not caps.supports_structured_output:
        raise LLMError(f"'{model}' does not support structured output.", ErrorCategory.VALIDATION)
    if tools and not caps.supports_tools:
        raise LLMError(f"'{model}' does not support tool calling.", ErrorCategory.VALIDATION)
    if n > 1 and not caps.supports_n:
        raise LLMError(
            f"'{model}' does not support n={n}; make {n} separate calls.",
            ErrorCategory.VALIDATION,
        )
    if reasoning_effort is not None and reasoning_effort not in caps.reasoning_efforts:
        allowed = ", ".join(caps.reasoning_efforts) or "none (not a reasoning model)"
        raise LLMError(
            f"reasoning_effort='{reasoning_effort}' is not valid for '{model}'; allowed: {allowed}.",
            ErrorCategory.VALIDATION,
        )
    return caps


def shutdown_warnings(models: dict[str, str], today: date | None = None) -> tuple[list[str], bool]:
    """Warnings for configured models near shutdown; True if any is already past it."""
    day = today or today_utc()
    warnings: list[str] = []
    past = False
    for service, model in sorted(models.items()):
        caps = MODEL_CAPABILITIES.get(model)
        if caps is None or caps.shutdown_date is None:
            continue
        days_left = (caps.shutdown_date - day).days
        if days_left <= 0:
            past = True
            warnings.append(
                f"{service}: model '{model}' was shut down on {caps.shutdown_date}; "
                f"switch to '{caps.successor}'."
            )
        elif days_left <= 30:
            warnings.append(
                f"{service}: model '{model}' shuts down on {caps.shutdown_date} "
                f"({days_left} days); switch to '{caps.successor}'."
            )
    return warnings, past
