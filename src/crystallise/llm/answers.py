"""Reading a model's answer: the completion's choices, parsed as the call asked (strict
schema, forced tool call or JSON found in free text), tool calls, log-probabilities, usage;
what was wrong with an answer that failed its schema, and the re-ask that repairs it."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ValidationError

from crystallise.llm.compat import Strategy, extract_json
from crystallise.llm.errors import ErrorCategory, LLMError


@dataclass
class ChoiceResult:
    content: str | None
    parsed: Any = None
    refusal: str | None = None
    tool_calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    finish_reason: str | None = None
    # per-token log-probabilities (the completion's ``logprobs.content``) when asked for
    logprobs: list[dict[str, Any]] | None = None


@dataclass
class ChatResult:
    """One completed call: its choices, usage as the provider reported it, and model version."""

    choices: list[ChoiceResult]
    usage: dict[str, Any] | None
    model_version: str
    request_id: str | None = None
    answered: int = 0  # choices the server sent (some may have failed their schema)

    @property
    def parsed(self) -> Any:
        return self.choices[0].parsed

    @property
    def content(self) -> str | None:
        return self.choices[0].content

    @property
    def tool_arguments(self) -> dict[str, Any] | None:
        calls = self.choices[0].tool_calls
        return calls[0][1] if calls else None


class SchemaMismatch(Exception):
    """An answer that is not the object its schema asks for (``answer``: its text)."""

    def __init__(self, message: str, answer: str | None = None) -> None:
        super().__init__(message)
        self.answer = answer


def repair_messages(exc: SchemaMismatch) -> list[dict[str, Any]]:
    """The re-ask after an answer that failed its schema: the answer, then what was wrong."""
    if exc.answer is None:
        return []
    return [
        {"role": "assistant", "content": exc.answer[:4000]},
        {
            "role": "user",
            "content": f"That answer is not valid: {str(exc)[:500]}. Reply again with only "
            "the corrected JSON object, matching the schema exactly.",
        },
    ]


def merge_results(results: list[ChatResult]) -> ChatResult:
    """Several calls' answers as one result (their choices, their usage summed)."""
    usage: dict[str, Any] | None = None
    for result in results:
        if result.usage is not None:
            usage = add_usage(usage or {}, result.usage)
    first = results[0]
    choices = [c for r in results for c in r.choices]
    answered = sum(r.answered for r in results)
    return ChatResult(choices, usage, first.model_version, first.request_id, answered)


def add_usage(total: dict[str, Any], more: dict[str, Any]) -> dict[str, Any]:
    out = dict(total)
    for name, value in more.items():
        if isinstance(value, bool) or value is None:
            continue
        if isinstance(value, int | float):
            out[name] = out.get(name, 0) + value
        elif isinstance(value, dict):
            out[name] = add_usage(out.get(name) or {}, value)
    return out


def completion_body(response: Any) -> dict[str, Any]:
    """The completion body as plain JSON (no model construction: we read a few fields)."""
    try:
        body = json.loads(response.content)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise SchemaMismatch(f"provider answer is not JSON ({exc})") from exc
    if not isinstance(body, dict) or not isinstance(body.get("choices"), list):
        raise SchemaMismatch("provider answer has no choices")
    return body


def _tool_calls(message: dict[str, Any], failures: list[str]) -> list[tuple[str, dict[str, Any]]]:
    calls: list[tuple[str, dict[str, Any]]] = []
    for call in message.get("tool_calls") or []:
        function = call.get("function") or {}
        try:
            args = json.loads(function.get("arguments") or "{}", strict=False)
        except json.JSONDecodeError as exc:
            failures.append(f"tool arguments are not JSON ({exc.msg})")
            continue
        calls.append((str(function.get("name")), args if isinstance(args, dict) else {}))
    return calls


def to_result(
    completion: dict[str, Any],
    output_schema: type[BaseModel] | None,
    strategy: Strategy | None,
    headers: Any,
) -> ChatResult:
    """The completion's choices, parsed as the call's schema asks (``strategy``: how the
    structured answer was asked for; None for free text or the caller's own tools). Raises
    ``SchemaMismatch`` when no choice is usable, and an item-level LLMError when the model
    refused or was cut off."""
    choices: list[ChoiceResult] = []
    failures: list[tuple[str, str | None]] = []
    for choice in completion["choices"]:
        read = _read_choice(choice, output_schema, strategy)
        if isinstance(read, ChoiceResult):
            choices.append(read)
        else:
            failures.append(read)
    if not choices and failures:
        raise SchemaMismatch(*failures[0])
    if choices and all(c.refusal for c in choices):
        raise LLMError(
            f"Model refused the request: {choices[0].refusal}", ErrorCategory.VALIDATION, item=True
        )
    usage = completion.get("usage")
    return ChatResult(
        choices,
        usage if isinstance(usage, dict) else None,
        str(completion.get("model") or ""),
        headers.get("x-request-id") if headers is not None else None,
        answered=len(completion["choices"]),
    )


def _read_choice(
    choice: dict[str, Any], output_schema: type[BaseModel] | None, strategy: Strategy | None
) -> ChoiceResult | tuple[str, str | None]:
    """One choice as the call asked for it, or what was wrong with it (and its text)."""
    message = choice.get("message") or {}
    refusal = message.get("refusal")
    tool_failures: list[str] = []
    calls = _tool_calls(message, tool_failures)
    content = message.get("content")
    finish = choice.get("finish_reason")
    parsed: Any = None
    if refusal:
        pass
    elif finish == "length":
        raise LLMError(
            "Model answer was cut off (finish_reason=length); raise max_output_tokens.",
            ErrorCategory.VALIDATION,
            item=True,
        )
    elif strategy is not None:
        text = _structured_text(content, calls, strategy, tool_failures)
        try:
            parsed = _parse_structured(text, output_schema, strategy)
        except (ValidationError, json.JSONDecodeError) as exc:
            return (_mismatch_text(exc), text)
        if strategy is Strategy.TOOL_CALL:
            calls, content = [], text
    elif tool_failures:
        return (tool_failures[0], None)
    return ChoiceResult(content, parsed, refusal, calls, finish, _logprobs(choice))


def _logprobs(choice: dict[str, Any]) -> list[dict[str, Any]] | None:
    """A choice's per-token log-probabilities (``logprobs.content``), when it has them."""
    logprobs = choice.get("logprobs")
    tokens = logprobs.get("content") if isinstance(logprobs, dict) else None
    return tokens if isinstance(tokens, list) else None


def _parse_structured(text: str, schema: type[BaseModel] | None, strategy: Strategy) -> Any:
    """The answer as the schema's object. Strict answers are parsed as sent; free-text and
    grammar-constrained answers may carry raw newlines inside strings (llama.cpp does), which
    a lenient parse accepts."""
    if strategy is Strategy.JSON_SCHEMA:
        return schema.model_validate_json(text) if schema else json.loads(text)
    data = json.loads(text, strict=False)
    return schema.model_validate(data) if schema else data


def _mismatch_text(exc: ValidationError | json.JSONDecodeError) -> str:
    """What was wrong with an answer, short: the first errors' place and message."""
    if isinstance(exc, json.JSONDecodeError):
        return f"not JSON ({exc.msg} at character {exc.pos})"
    problems = [
        f"{'.'.join(str(p) for p in e['loc']) or 'answer'}: {e['msg']}" for e in exc.errors()[:3]
    ]
    more = f" (+{exc.error_count() - 3} more)" if exc.error_count() > 3 else ""
    return f"{exc.error_count()} errors in {exc.title}: " + "; ".join(problems) + more


def _structured_text(
    content: Any,
    calls: list[tuple[str, dict[str, Any]]],
    strategy: Strategy,
    tool_failures: list[str],
) -> str:
    """The JSON text of a structured answer: the forced call's arguments, the strict
    answer as sent, or the object found in a free-text answer."""
    if strategy is Strategy.TOOL_CALL and calls:
        return json.dumps(calls[0][1])
    text = content if isinstance(content, str) else ""
    if not text and tool_failures:
        return ""
    return text if strategy is Strategy.JSON_SCHEMA else extract_json(text)


def read_response(response: Any, output_schema: type[BaseModel] | None) -> ChatResult:
    """A Responses API answer (the SDK's ``Response``), parsed as ``output_schema`` asks."""
    content = response.output_text
    parsed: Any = None
    if output_schema is not None:
        try:
            parsed = output_schema.model_validate_json(content)
        except ValidationError as exc:
            raise LLMError(
                f"Model answer did not match the response schema: {exc.error_count()} errors",
                ErrorCategory.TRANSIENT,
                bad_answer=True,
            ) from exc
    usage = response.usage.model_dump() if response.usage else None
    return ChatResult([ChoiceResult(content, parsed)], usage, response.model, response.id)
