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


def _cached_tokens(usage: Any) -> int:
    for details_name in ("prompt_tokens_details", "input_tokens_details"):
        details = (
            usage.get(details_name)
            if isinstance(usage, dict)
            else getattr(usage, details_name, None)
        )
        if details is not None:
            return _get(details, "cached_tokens")
    return _get(usage, "cached_tokens")


def normalise_usage(usage: Any) -> dict[str, int]:
    """Chat (prompt/completion) or Responses (input/output) usage as one flat dict."""
    return {
        "input_tokens": _get(usage, "prompt_tokens", "input_tokens"),
        "output_tokens": _get(usage, "completion_tokens", "output_tokens"),
        "cached_tokens": _cached_tokens(usage),
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


class UsageTally:
    """Running usage across many calls, possibly of several models, priced per model."""

    def __init__(self) -> None:
        self.by_model: dict[str, dict[str, int]] = {}
        self.calls = 0

    def add(self, model: str, usage: Any) -> None:
        self.calls += 1
        if usage is None:
            return
        flat = normalise_usage(usage)
        row = self.by_model.setdefault(
            model, {"input_tokens": 0, "output_tokens": 0, "cached_tokens": 0}
        )
        for key, value in flat.items():
            row[key] += value

    def merge_dict(self, data: dict[str, Any]) -> None:
        """Restore a tally saved with :meth:`to_dict` (used when a job resumes)."""
        self.calls += int(data.get("calls", 0))
        for model, row in (data.get("by_model") or {}).items():
            mine = self.by_model.setdefault(
                model, {"input_tokens": 0, "output_tokens": 0, "cached_tokens": 0}
            )
            for key in mine:
                mine[key] += int(row.get(key, 0))

    def to_dict(self) -> dict[str, Any]:
        return {"calls": self.calls, "by_model": self.by_model}

    def summary(self) -> dict[str, Any]:
        """The §4.4 shape, plus ``cached_input_tokens`` and ``calls``."""
        inp = sum(r["input_tokens"] for r in self.by_model.values())
        out = sum(r["output_tokens"] for r in self.by_model.values())
        cached = sum(r["cached_tokens"] for r in self.by_model.values())
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
            "calls": self.calls,
        }
