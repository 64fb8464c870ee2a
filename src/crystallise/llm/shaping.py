"""Shaping a call: the options a caller asks with (``CallOptions``), checked against the
model's limits (pre-flight) and turned into what to ask the endpoint (``CallIntent``), with
its token estimate; the strict JSON schema of an answer type; Responses API arguments."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import openai
from pydantic import BaseModel

from crystallise.config.model_capabilities import (
    MODEL_CAPABILITIES,
    ModelCapabilities,
    capabilities_for,
    validate_request,
)
from crystallise.config.settings import Settings
from crystallise.llm.compat import CallIntent
from crystallise.llm.tokens import count_message_tokens, estimate_text_tokens


@dataclass(frozen=True)
class CallOptions:
    """How to ask: the answer's type (a Pydantic model, or a raw JSON schema), tools,
    sampling and the output cap. One type for ``LLMClient.chat`` and ``prepare_call``."""

    output_schema: type[BaseModel] | None = None
    json_schema: dict[str, Any] | None = None
    tools: list[dict[str, Any]] | None = None
    tool_choice: str | dict[str, Any] | None = None
    temperature: float | None = None
    max_output_tokens: int | None = None
    n: int = 1
    reasoning_effort: str | None = None
    prompt_cache_key: str | None = None
    top_logprobs: int | None = None


@dataclass(frozen=True)
class PreparedCall:
    """A checked call: what to ask (intent), of which model (caps), its token estimate."""

    intent: CallIntent
    caps: ModelCapabilities
    est_tokens: int
    output_schema: type[BaseModel] | None


def prepare_call(
    settings: Settings, messages: list[dict[str, Any]], model: str, options: CallOptions
) -> PreparedCall:
    """A call checked against the model's limits (pre-flight) and shaped as an intent."""
    o = options
    schema = strict_schema(o.output_schema) if o.output_schema is not None else o.json_schema
    est_input = count_message_tokens(messages)
    if o.output_schema is not None:
        est_input += _schema_tokens(o.output_schema)
    elif o.json_schema is not None:
        est_input += estimate_text_tokens(json.dumps(o.json_schema))
    if o.tools:
        est_input += estimate_text_tokens(json.dumps(o.tools))
    caps = validate_request(
        model,
        input_tokens=est_input,
        max_output_tokens=o.max_output_tokens,
        temperature=o.temperature,
        structured_output=schema is not None,
        tools=bool(o.tools),
        n=o.n,
        reasoning_effort=o.reasoning_effort,
        today=settings.today,
        caps=capabilities_for(settings, model),
    )
    name = o.output_schema.__name__ if o.output_schema is not None else "response"
    openai_like = settings.is_openai_endpoint or settings.is_azure
    params = _sampling(caps, openai_like, o)
    intent = CallIntent(model, messages, schema, name, o.tools, o.tool_choice, params)
    est_tokens = est_input + (o.max_output_tokens or 512) * o.n
    return PreparedCall(intent, caps, est_tokens, o.output_schema)


def _cap_parameter(caps: ModelCapabilities, openai_like: bool) -> str:
    """The output cap's name: OpenAI's models on OpenAI or Azure take (and reasoning models
    require) max_completion_tokens; other servers take max_tokens, and some (llama-cpp-python)
    silently ignore max_completion_tokens, which would leave the answer uncapped."""
    if openai_like and caps.name in MODEL_CAPABILITIES:
        return "max_completion_tokens"
    return "max_tokens"


def _sampling(caps: ModelCapabilities, openai_like: bool, o: CallOptions) -> dict[str, Any]:
    """``n``, temperature, the output cap, effort, cache key and token log-probabilities,
    as the model takes them."""
    out: dict[str, Any] = {}
    if o.n > 1:
        out["n"] = o.n
    if o.temperature is not None and caps.supports_temperature:
        out["temperature"] = o.temperature
    if o.max_output_tokens is not None:
        out[_cap_parameter(caps, openai_like)] = o.max_output_tokens
    if o.reasoning_effort is not None:
        out["reasoning_effort"] = o.reasoning_effort
    if o.prompt_cache_key:
        out["prompt_cache_key"] = o.prompt_cache_key
    if o.top_logprobs:
        out["logprobs"] = True
        out["top_logprobs"] = o.top_logprobs
    return out


@lru_cache(maxsize=256)
def strict_schema(model: type[BaseModel]) -> dict[str, Any]:
    """The SDK's strict JSON schema for a Pydantic model (all keys required, no extras).

    Cached per class: building it costs ~1 ms and every paper of a job uses the same one.
    Callers must not mutate the returned dict.
    """
    tool = openai.pydantic_function_tool(model)
    return dict(tool["function"]["parameters"])


@lru_cache(maxsize=256)
def _schema_tokens(model: type[BaseModel]) -> int:
    return estimate_text_tokens(json.dumps(strict_schema(model)))


def prepare_responses(
    settings: Settings,
    input_text: str | list[dict[str, Any]],
    model: str,
    instructions: str | None,
    output_schema: type[BaseModel] | None,
    tools: list[dict[str, Any]] | None,
    max_output_tokens: int | None,
) -> dict[str, Any]:
    """A Responses API call checked against the model's limits, as the SDK's arguments."""
    text = input_text if isinstance(input_text, str) else json.dumps(input_text)
    validate_request(
        model,
        input_tokens=estimate_text_tokens(text + (instructions or "")),
        max_output_tokens=max_output_tokens,
        structured_output=output_schema is not None,
        tools=bool(tools),
        today=settings.today,
        caps=capabilities_for(settings, model),
    )
    return _responses_kwargs(
        model, input_text, instructions, output_schema, tools, max_output_tokens
    )


def _responses_kwargs(
    model: str,
    input_text: str | list[dict[str, Any]],
    instructions: str | None,
    output_schema: type[BaseModel] | None,
    tools: list[dict[str, Any]] | None,
    max_output_tokens: int | None,
) -> dict[str, Any]:
    kwargs: dict[str, Any] = {"model": model, "input": input_text}
    if instructions:
        kwargs["instructions"] = instructions
    if output_schema is not None:
        kwargs["text"] = {
            "format": {
                "type": "json_schema",
                "name": output_schema.__name__,
                "schema": strict_schema(output_schema),
                "strict": True,
            }
        }
    if tools:
        kwargs["tools"] = tools
    if max_output_tokens:
        kwargs["max_output_tokens"] = max_output_tokens
    return kwargs
