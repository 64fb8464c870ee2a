"""Hard-coded pricing (USD per 1M tokens) and usage tallies (§4.4). Approximate by design."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

DEFAULT_PRICING_PER_1M: dict[str, dict[str, float]] = {
    "gpt-5-nano": {"input": 0.05, "cached_input": 0.005, "output": 0.40},
    "gpt-5-mini": {"input": 0.25, "cached_input": 0.025, "output": 2.00},
    "gpt-4.1": {"input": 2.00, "cached_input": 0.50, "output": 8.00},
    "gpt-4.1-mini": {"input": 0.40, "cached_input": 0.10, "output": 1.60},
    "gpt-5.4-nano": {"input": 0.20, "cached_input": 0.02, "output": 1.25},
    "gpt-5.4-mini": {"input": 0.75, "cached_input": 0.075, "output": 4.50},
    "gpt-5.4": {"input": 2.50, "cached_input": 0.25, "output": 15.00},
}
# Unknown models (local servers) are priced as zero rather than guessed.
_ZERO = {"input": 0.0, "cached_input": 0.0, "output": 0.0}


# usage tallied as "<model>@batch" ran through the Batch API: every token at half price
BATCH_SUFFIX = "@batch"
BATCH_PRICE_FACTOR = 0.5


def pricing_for(model: str) -> dict[str, float]:
    """Price row for ``model``; dated snapshots (``gpt-4.1-2025-04-14``) use their base row,
    ``<model>@batch`` the Batch API's (half of every rate)."""
    if model.endswith(BATCH_SUFFIX):
        row = pricing_for(model.removesuffix(BATCH_SUFFIX))
        return {k: v * BATCH_PRICE_FACTOR for k, v in row.items()}
    if model in DEFAULT_PRICING_PER_1M:
        return DEFAULT_PRICING_PER_1M[model]
    for name in sorted(DEFAULT_PRICING_PER_1M, key=len, reverse=True):
        if model.startswith(name + "-"):
            return DEFAULT_PRICING_PER_1M[name]
    return _ZERO


def estimate_cost(
    model: str, input_tokens: int, output_tokens: int, cached_input_tokens: int = 0
) -> float:
    """USD for the given token counts; cached input (part of ``input_tokens``) at its rate."""
    price = pricing_for(model)
    cached = min(cached_input_tokens, input_tokens)
    return (
        (input_tokens - cached) * price["input"]
        + cached * price["cached_input"]
        + output_tokens * price["output"]
    ) / 1_000_000


def _get(obj: Any, *names: str) -> int:
    for name in names:
        value = obj.get(name) if isinstance(obj, dict) else getattr(obj, name, None)
        if isinstance(value, int):
            return value
    return 0


def _detail(usage: Any, sections: tuple[str, str], key: str) -> int | None:
    """``key`` in the first of the usage's detail ``sections`` it has (chat or Responses
    naming); None when it has neither."""
    for section in sections:
        details = usage.get(section) if isinstance(usage, dict) else getattr(usage, section, None)
        if details is not None:
            return _get(details, key)
    return None


def _cached_tokens(usage: Any) -> int:
    cached = _detail(usage, ("prompt_tokens_details", "input_tokens_details"), "cached_tokens")
    return _get(usage, "cached_tokens") if cached is None else cached


def _reasoning_tokens(usage: Any) -> int:
    sections = ("completion_tokens_details", "output_tokens_details")
    return _detail(usage, sections, "reasoning_tokens") or 0


def normalise_usage(usage: Any) -> dict[str, int]:
    """Chat (prompt/completion) or Responses (input/output) usage as one flat dict; the
    hidden reasoning tokens are part of the output tokens (and billed as output)."""
    return {
        "input_tokens": _get(usage, "prompt_tokens", "input_tokens"),
        "output_tokens": _get(usage, "completion_tokens", "output_tokens"),
        "cached_tokens": _cached_tokens(usage),
        "reasoning_tokens": _reasoning_tokens(usage),
    }


def tally_usage(model: str, usage_list: Iterable[Any]) -> dict[str, Any]:
    """Sum usage objects/dicts into ``{input_tokens, output_tokens, total_tokens, estimated_cost_usd}``."""
    inp = out = cached = 0
    for usage in usage_list:
        if usage is None:
            continue
        flat = normalise_usage(usage)
        inp += flat["input_tokens"]
        out += flat["output_tokens"]
        cached += flat["cached_tokens"]
    return {
        "input_tokens": inp,
        "output_tokens": out,
        "total_tokens": inp + out,
        "estimated_cost_usd": round(estimate_cost(model, inp, out, cached), 6),
    }


def _empty_row() -> dict[str, int]:
    keys = ("input_tokens", "output_tokens", "cached_tokens", "reasoning_tokens", "answers")
    return dict.fromkeys(keys, 0)


MIN_MEASURED_ANSWERS = 50  # fewer answers than this: too few to replace the allowance


def reasoning_per_answer(tallies: Iterable[dict[str, Any]], model: str) -> float | None:
    """Hidden reasoning tokens per answer of ``model`` (live or batch) over saved job
    tallies (``UsageTally.to_dict``); None when they hold under MIN_MEASURED_ANSWERS."""
    answers = reasoning = 0
    for tally in tallies:
        for name, row in (tally.get("by_model") or {}).items():
            if name.removesuffix(BATCH_SUFFIX) == model and "reasoning_tokens" in row:
                answers += int(row.get("answers", 0))
                reasoning += int(row.get("reasoning_tokens", 0))
    return reasoning / answers if answers >= MIN_MEASURED_ANSWERS else None


class UsageTally:
    """Running usage across many calls, possibly of several models, priced per model."""

    def __init__(self) -> None:
        self.by_model: dict[str, dict[str, int]] = {}
        self.calls = 0

    def add(self, model: str, usage: Any, answers: int = 1) -> None:
        """One call's usage; ``answers``: the choices it returned (n)."""
        self.calls += 1
        if usage is None:
            return
        flat = {**normalise_usage(usage), "answers": max(answers, 1)}
        row = self.by_model.setdefault(model, _empty_row())
        for key, value in flat.items():
            row[key] = row.get(key, 0) + value

    def merge_dict(self, data: dict[str, Any]) -> None:
        """Restore a tally saved with :meth:`to_dict` (used when a job resumes)."""
        self.calls += int(data.get("calls", 0))
        for model, row in (data.get("by_model") or {}).items():
            mine = self.by_model.setdefault(model, _empty_row())
            for key in mine:
                mine[key] += int(row.get(key, 0))

    def to_dict(self) -> dict[str, Any]:
        return {"calls": self.calls, "by_model": self.by_model}

    def summary(self) -> dict[str, Any]:
        """The §4.4 shape, plus ``cached_input_tokens`` and ``calls``."""
        inp = sum(r["input_tokens"] for r in self.by_model.values())
        out = sum(r["output_tokens"] for r in self.by_model.values())
        cached = sum(r["cached_tokens"] for r in self.by_model.values())
        reasoning = sum(r.get("reasoning_tokens", 0) for r in self.by_model.values())
        cost = sum(
            estimate_cost(m, r["input_tokens"], r["output_tokens"], r["cached_tokens"])
            for m, r in self.by_model.items()
        )
        return {
            "input_tokens": inp,
            "output_tokens": out,
            "total_tokens": inp + out,
            "estimated_cost_usd": round(cost, 6),
            "cached_input_tokens": cached,
            "reasoning_tokens": reasoning,
            "calls": self.calls,
        }
