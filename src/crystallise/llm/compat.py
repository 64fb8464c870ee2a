"""What an OpenAI-compatible server accepts, learned once per endpoint and model.

Servers differ (shared/PROVIDER-FACTS.md): llama-cpp-python refuses ``response_format``
``json_schema`` but takes ``json_object`` with a schema; vLLM has its own ``guided_json``;
Ollama its ``format``; some servers refuse ``prompt_cache_key``, ``reasoning_effort``,
``max_completion_tokens`` or ``n``. A :class:`Profile` holds, per (endpoint, model), the
structured-output strategy and the parameters to drop or rename. A call is built from the
profile; when the server rejects a parameter by name, the profile moves on (next strategy,
parameter dropped or renamed) and the call is sent again at once. Until a call carrying a
feature has succeeded, calls carrying it go one at a time, so a job learns from one failed
call per endpoint and model, not one per paper.
"""

from __future__ import annotations

import asyncio
import json
import re
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import openai


class Strategy(StrEnum):
    JSON_SCHEMA = "json_schema"  # OpenAI's strict response_format
    JSON_OBJECT = "json_object"  # response_format json_object + schema (llama.cpp)
    GUIDED_JSON = "guided_json"  # vLLM's guided decoding parameter
    OLLAMA_FORMAT = "ollama_format"  # Ollama's format parameter
    TOOL_CALL = "tool_call"  # a forced call of one function whose parameters are the schema
    PROMPT = "prompt"  # the schema in the prompt; the answer validated, one repair re-ask


# auto: try these in turn, each after the server rejected the one before
AUTO_ORDER = (Strategy.JSON_SCHEMA, Strategy.JSON_OBJECT, Strategy.TOOL_CALL, Strategy.PROMPT)
# parameters a server may refuse that a call can do without (dropped) or say otherwise
DROPPABLE = ("prompt_cache_key", "reasoning_effort", "logprobs", "top_logprobs", "temperature")
RENAMED = {"max_completion_tokens": "max_tokens", "max_tokens": "max_completion_tokens"}
FIX = (
    "set CRYSTALLISE_STRUCTURED_OUTPUT (auto, json_schema, json_object, guided_json, "
    "ollama_format, tool_call, prompt) or the model's structured_output in "
    "CRYSTALLISE_MODEL_OVERRIDES"
)


@dataclass
class CallIntent:
    """What a call asks for, before any server's dialect is applied."""

    model: str
    messages: list[dict[str, Any]]
    schema: dict[str, Any] | None = None  # the answer's JSON schema (structured calls)
    schema_name: str = "response"
    tools: list[dict[str, Any]] | None = None  # the caller's own tools (not a strategy's)
    tool_choice: str | dict[str, Any] | None = None
    params: dict[str, Any] = field(default_factory=dict)  # n, temperature, caps, effort, key


@dataclass
class Profile:
    """One endpoint-and-model's dialect: strategy, dropped and renamed parameters."""

    strategy: Strategy
    pinned: bool  # chosen by the operator: never moved, a rejection is reported
    dropped: set[str] = field(default_factory=set)
    renamed: dict[str, str] = field(default_factory=dict)
    confirmed: set[str] = field(default_factory=set)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    learned: list[str] = field(default_factory=list)  # what the server taught us, in order

    # ---- building a call ---------------------------------------------------------------
    def body(
        self, intent: CallIntent, repair: list[dict[str, Any]] | None = None
    ) -> dict[str, Any]:
        messages = list(intent.messages)
        out: dict[str, Any] = {"model": intent.model}
        if intent.schema is not None:
            out.update(self._structured(intent, messages))
        if intent.tools:
            out["tools"] = intent.tools
            if intent.tool_choice is not None:
                out["tool_choice"] = intent.tool_choice
        for name, value in intent.params.items():
            if name in self.dropped or (name == "n" and value == 1):
                continue
            out[self.renamed.get(name, name)] = value
        out["messages"] = messages + (repair or [])
        return out

    def _structured(self, intent: CallIntent, messages: list[dict[str, Any]]) -> dict[str, Any]:
        schema, name = intent.schema, intent.schema_name
        assert schema is not None
        if self.strategy is Strategy.JSON_SCHEMA:
            return {
                "response_format": {
                    "type": "json_schema",
                    "json_schema": {"name": name, "schema": schema, "strict": True},
                }
            }
        _instruct(messages, schema_instruction(schema))
        if self.strategy is Strategy.JSON_OBJECT:
            return {"response_format": {"type": "json_object", "schema": schema}}
        if self.strategy is Strategy.GUIDED_JSON:
            return {"guided_json": schema}
        if self.strategy is Strategy.OLLAMA_FORMAT:
            return {"format": schema}
        if self.strategy is Strategy.TOOL_CALL:
            function = {"name": name, "description": "Give the answer.", "parameters": schema}
            return {
                "tools": [{"type": "function", "function": function}],
                "tool_choice": {"type": "function", "function": {"name": name}},
            }
        return {}

    # ---- learning from the server --------------------------------------------------------
    @staticmethod
    def features(body: dict[str, Any]) -> set[str]:
        found = {k for k in body if k not in ("model", "messages")}
        if "response_format" in body:
            found.add(f"response_format:{body['response_format'].get('type')}")
        return found

    def unconfirmed(self, body: dict[str, Any]) -> bool:
        return not self.features(body) <= self.confirmed

    def confirm(self, body: dict[str, Any]) -> None:
        self.confirmed |= self.features(body)

    def adapt(self, feature: str, body: dict[str, Any]) -> bool:
        """Move past a rejected ``feature``; False when nothing is left to try."""
        if feature in STRATEGY_FEATURES and self._strategy_sent(feature):
            return self._next_strategy(feature)
        original = next((k for k, v in self.renamed.items() if v == feature), feature)
        if original in RENAMED and original not in self.renamed:
            self.renamed[original] = RENAMED[original]
            self.learned.append(f"{original} sent as {RENAMED[original]}")
            return True
        if feature in DROPPABLE or feature == "n" or original in self.renamed:
            if original in self.dropped:
                return False
            self.dropped.add(original)
            self.learned.append(f"{original} dropped")
            return True
        return False

    def _strategy_sent(self, feature: str) -> bool:
        """Whether the refused ``feature`` came from the strategy (tools may be the
        caller's own)."""
        return feature not in ("tools", "tool_choice") or self.strategy is Strategy.TOOL_CALL

    def _next_strategy(self, feature: str) -> bool:
        if self.pinned:
            return False
        order = list(AUTO_ORDER)
        at = order.index(self.strategy) if self.strategy in order else 0
        if at + 1 >= len(order):
            return False
        rejected = self.strategy
        self.strategy = order[at + 1]
        self.learned.append(f"{rejected} refused ({feature}); using {self.strategy}")
        return True


# parameters a structured-output strategy sends: refusing one moves the strategy on
STRATEGY_FEATURES = frozenset({"response_format", "guided_json", "format", "tools", "tool_choice"})


def _instruct(messages: list[dict[str, Any]], text: str) -> None:
    """Add ``text`` to the first system message (a shared, cacheable prefix), or open the
    conversation with it; never a system turn after the user's (some templates refuse)."""
    for i, message in enumerate(messages):
        if message.get("role") == "system" and isinstance(message.get("content"), str):
            messages[i] = {**message, "content": f"{message['content']}\n\n{text}"}
            return
    messages.insert(0, {"role": "system", "content": text})


def schema_instruction(schema: dict[str, Any]) -> str:
    return (
        "Answer with one JSON object and nothing else (no prose, no code fence). It must "
        "match this JSON Schema:\n" + json.dumps(schema, separators=(",", ":"))
    )


# ---- reading a server's rejection ----------------------------------------------------
_PARAM_NAMES = (
    "prompt_cache_key",
    "reasoning_effort",
    "max_completion_tokens",
    "top_logprobs",
    "logprobs",
    "guided_json",
    "tool_choice",
    "response_format",
    "tools",
    "temperature",
)


def provider_text(exc: openai.APIStatusError) -> str:
    """The error text a server sent, whatever its shape (OpenAI's nested error, vLLM's
    top-level message, LM Studio's plain string, FastAPI's detail list)."""
    try:
        body = exc.response.json()
    except (ValueError, UnicodeDecodeError):
        return exc.response.text[:2000]
    return json.dumps(body)[:4000] if not isinstance(body, str) else body[:4000]


def rejected_feature(text: str, body: dict[str, Any]) -> str | None:
    """The request parameter a server's rejection names, if it names one we sent."""
    low = text.lower()
    for name in _PARAM_NAMES:
        if name in low and name in body:
            return name
    if "response_format" in body and ("json_schema" in low or "json_object" in low):
        return "response_format"
    if "format" in body and re.search(r"['\"`(,\s]format['\"`),\s]", low):
        return "format"
    if "n" in body and re.search(
        r"['\"`]n['\"`]|supplied:\s*n\b|\bn\s*(?:must|should|=|>|<|is not)\b", low
    ):
        return "n"
    if "max_tokens" in body and "max_tokens" in low:
        return "max_tokens"
    return None


def is_request_rejection(exc: openai.APIStatusError, text: str) -> bool:
    """A 400/422, or a 500 that is really a refused request body (some servers answer
    their own validation errors with 500)."""
    if exc.status_code in (400, 422):
        return True
    return exc.status_code == 500 and "validation error" in text.lower()


def extract_json(text: str) -> str:
    """The JSON object in a free-text answer: code fences and prose around it removed."""
    stripped = text.strip()
    fence = re.search(r"```(?:json)?\s*(.*?)```", stripped, re.S)
    if fence:
        stripped = fence.group(1).strip()
    start, end = stripped.find("{"), stripped.rfind("}")
    if start > 0 or (start >= 0 and end < len(stripped) - 1):
        return stripped[start : end + 1] if end > start else stripped
    return stripped


def initial_strategy(configured: str) -> tuple[Strategy, bool]:
    """The profile's first strategy and whether the operator pinned it."""
    if configured == "auto":
        return Strategy.JSON_SCHEMA, False
    return Strategy(configured), True
