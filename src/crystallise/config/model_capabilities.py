"""What each model can do, and the pre-flight check every call goes through (§10.3)."""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Literal, cast

from crystallise.errors import ErrorCategory, LLMError

if TYPE_CHECKING:
    from crystallise.config.settings import Settings


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
    supports_logprobs: bool = False
    # how structured answers are asked for (see Settings.structured_output); "auto": the
    # operator's setting, then discovery from the server's rejections
    structured_output: str = "auto"


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
            supports_logprobs=True,
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
            supports_logprobs=True,
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

# Models outside the table (local servers, gateways) where unknown models are allowed:
# temperature and tools assumed, one answer per call (n), no log-probabilities; an operator
# says otherwise per model with CRYSTALLISE_MODEL_OVERRIDES.
UNKNOWN_MODEL_CAPABILITIES = ModelCapabilities(
    "custom", 128_000, 120_000, 16_384, True, supports_n=False
)


def table_entry(model: str) -> ModelCapabilities | None:
    """The table's entry: exact, a dated snapshot, or behind a gateway's prefix
    (``openai/gpt-4.1``, ``azure/gpt-4.1-mini-2025-04-14``)."""
    for name in (model, model.rsplit("/", 1)[-1]):
        if name in MODEL_CAPABILITIES:
            return MODEL_CAPABILITIES[name]
        for known in sorted(MODEL_CAPABILITIES, key=len, reverse=True):
            if name.startswith(known + "-20"):
                return MODEL_CAPABILITIES[known]
    return None


def get_capabilities(model: str, *, allow_unknown: bool = False) -> ModelCapabilities:
    """Capabilities of ``model`` (dated snapshots and gateway-prefixed names resolve to
    their base model)."""
    entry = table_entry(model)
    if entry is not None:
        return entry
    if allow_unknown:
        return UNKNOWN_MODEL_CAPABILITIES
    known = ", ".join(MODEL_CAPABILITIES)
    raise LLMError(
        f"Unknown model '{model}'. Use one of: {known} "
        "(or set CRYSTALLISE_ALLOW_UNKNOWN_MODELS=true for a custom OpenAI-compatible server).",
        ErrorCategory.VALIDATION,
    )


def capabilities_dict(caps: ModelCapabilities) -> dict[str, object]:
    """Capabilities as JSON-ready values (what the config API shows)."""
    out = asdict(caps)
    out["reasoning_efforts"] = list(caps.reasoning_efforts)
    out["shutdown_date"] = caps.shutdown_date.isoformat() if caps.shutdown_date else None
    return out


def capabilities_for(settings: Settings, model: str) -> ModelCapabilities:
    """``model``'s capabilities under the operator's settings: the table (or the defaults
    for unknown models, where allowed), then CRYSTALLISE_MODEL_OVERRIDES."""
    caps = get_capabilities(model, allow_unknown=settings.unknown_models_allowed)
    override = settings.model_overrides.get(model)
    if override is None:
        return caps
    changes = override.model_dump(exclude_none=True)
    window = changes.get("context_window", caps.context_window)
    out_cap = min(changes.get("max_output_tokens", caps.max_output_tokens), window)
    changes["max_output_tokens"] = out_cap
    if "context_window" in changes:  # room for at least half the window of input
        changes["max_input_tokens"] = window - min(out_cap, window // 2)
    return replace(caps, **changes)


def today_utc() -> date:
    return datetime.now(UTC).date()


# ---- retirement: which model actually runs ---------------------------------------------
RetiredModelPolicy = Literal["successor", "reject"]


@dataclass
class ModelReport:
    """What one HTTP request ran on: model -> version the server answered, and fallbacks."""

    models: dict[str, str | None] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


# Set per request by the API (response headers); None in jobs and library use.
model_report: ContextVar[ModelReport | None] = ContextVar("model_report", default=None)


def note_model(model: str, version: str | None) -> None:
    report = model_report.get()
    if report is not None and (version or model not in report.models):
        report.models[model] = version


@dataclass(frozen=True)
class ModelChoice:
    """The model that will run, what was asked for, and why they differ (if they do)."""

    model: str
    requested: str
    explicit: bool
    warning: str | None = None


def is_retired(caps: ModelCapabilities, day: date) -> bool:
    return caps.shutdown_date is not None and day >= caps.shutdown_date


def live_successor(model: str, day: date) -> str | None:
    """The first model down the successor chain that is still served on ``day``."""
    seen: set[str] = set()
    current = MODEL_CAPABILITIES.get(model) or get_capabilities(model)
    while is_retired(current, day):
        if current.successor is None or current.successor in seen:
            return None
        seen.add(current.successor)
        current = MODEL_CAPABILITIES[current.successor]
    return current.name


def resolve_model(
    requested: str | None,
    configured: str,
    *,
    policy: RetiredModelPolicy = "successor",
    explicit_fallback: bool = False,
    allow_unknown: bool = False,
    today: date | None = None,
    service: str = "",
) -> ModelChoice:
    """The model to run: ``requested`` or the service's ``configured`` default, retired ones
    replaced by their successor where the policy allows, refused (``validation``) otherwise."""
    explicit = requested is not None
    name = requested if requested is not None else configured
    caps = get_capabilities(name, allow_unknown=allow_unknown)
    day = today or today_utc()
    if not is_retired(caps, day):
        return ModelChoice(name, name, explicit)
    assert caps.shutdown_date is not None
    successor = live_successor(name, day)
    allowed = policy == "successor" and (explicit_fallback or not explicit)
    if not allowed or successor is None:
        raise LLMError(
            _retired_message(name, caps.shutdown_date, successor, explicit, service),
            ErrorCategory.VALIDATION,
        )
    warning = (
        f"Model '{name}' was shut down on {caps.shutdown_date.isoformat()}; "
        f"its successor '{successor}' is used instead."
    )
    report = model_report.get()
    if report is not None and warning not in report.warnings:
        report.warnings.append(warning)
    return ModelChoice(successor, name, explicit, warning)


def choose_model(
    settings: Settings, requested: str | None, configured: str, service: str = ""
) -> ModelChoice:
    """``resolve_model`` under the operator's settings (policy, unknown models, clock)."""
    return resolve_model(
        requested,
        configured,
        policy=cast(RetiredModelPolicy, settings.retired_model_policy),
        explicit_fallback=settings.retired_model_fallback_explicit,
        allow_unknown=settings.unknown_models_allowed,
        today=settings.today,
        service=service,
    )


def _retired_message(
    name: str, shutdown: date, successor: str | None, explicit: bool, service: str
) -> str:
    use = f"use '{successor}' instead" if successor else "choose a current model"
    if explicit:
        return (
            f"model: '{name}' was shut down on {shutdown.isoformat()}; {use} (or set "
            "CRYSTALLISE_RETIRED_MODEL_FALLBACK_EXPLICIT=true to run such requests on the "
            "successor)."
        )
    where = f" of service '{service}'" if service else ""
    return (
        f"The default model{where}, '{name}', was shut down on {shutdown.isoformat()} and "
        f"CRYSTALLISE_RETIRED_MODEL_POLICY=reject: {use} in the request's model field or in "
        "the service config."
    )


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
    caps: ModelCapabilities | None = None,
) -> ModelCapabilities:
    """Fail fast, as a ``validation`` LLMError naming problem and fix, if ``model`` can't serve this."""
    caps = caps or get_capabilities(model, allow_unknown=allow_unknown)
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
            item=True,
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


def shutdown_warnings(
    models: dict[str, str],
    today: date | None = None,
    policy: RetiredModelPolicy = "successor",
) -> tuple[list[str], bool]:
    """Warnings for configured models near or past shutdown; True if a service cannot run
    (its model is past shutdown and the policy does not move it to a successor)."""
    day = today or today_utc()
    warnings: list[str] = []
    past = False
    for service, model in sorted(models.items()):
        caps = MODEL_CAPABILITIES.get(model)
        if caps is None or caps.shutdown_date is None:
            continue
        days_left = (caps.shutdown_date - day).days
        if days_left <= 0:
            successor = live_successor(model, day)
            if policy == "successor" and successor is not None:
                warnings.append(
                    f"{service}: model '{model}' was shut down on {caps.shutdown_date}; "
                    f"requests run on its successor '{successor}'."
                )
                continue
            past = True
            warnings.append(
                f"{service}: model '{model}' was shut down on {caps.shutdown_date}; "
                f"switch to '{successor or caps.successor}'."
            )
        elif days_left <= 30:
            warnings.append(
                f"{service}: model '{model}' shuts down on {caps.shutdown_date} "
                f"({days_left} days); switch to '{caps.successor}'."
            )
    return warnings, past
