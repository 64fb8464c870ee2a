"""The fake's knobs (``FakeConfig``), scripted answers and the dialects of other servers."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from typing import Any

from starlette.responses import JSONResponse

DEFAULT_CONTEXT = {"gpt-4.1": 1_047_576, "gpt-4.1-mini": 1_047_576}


_WORD = re.compile(r"[A-Za-z][A-Za-z\-]{2,}")


@dataclass
class FakeConfig:
    latency_s: float = 0.0
    rpm: int | None = None
    tpm: int | None = None
    burst_s: float = 1.0  # bucket depth in seconds of the per-minute rate
    # window_s > 0: enforce limits as real providers do, per fixed window of this many seconds
    # (at most limit/60 × window_s per window) instead of the token bucket
    window_s: float = 0.0
    ratelimit_headers: bool = True  # False: a local server that sends no x-ratelimit-* headers
    valid_keys: list[str] | None = None  # None: any non-empty key is accepted
    context_limit: int | None = None  # tokens; None: per-model default (272k / 1M)
    # next calls: 500, 503, 429, "timeout", "quota" (429 insufficient_quota), None (passes)
    fail_statuses: list[Any] = field(default_factory=list)
    fail_every: int = 0  # every Nth chat call answers 500 (0: never)
    # random faults: this share of chat calls fails with one of fault_kinds (seeded)
    fault_rate: float = 0.0
    fault_kinds: list[Any] = field(default_factory=lambda: [500, "timeout"])
    fault_seed: int = 0
    # chat calls whose text contains fail_match answer fail_match_status (e.g. one bad paper)
    fail_match: str = ""
    fail_match_status: int = 400
    echo_masked_key: bool = False  # 401 messages quote the key masked, as OpenAI's do
    timeout_sleep_s: float = 30.0
    retry_after_s: float | None = None  # on injected 429s
    refuse: bool = False
    finish_length: bool = False
    invalid_json: int = 0  # next N chat answers are not valid for the schema
    model_suffix: str = "-2025-08-07"
    exact_tokens: bool = False
    # a server's quirks (see DIALECTS): what it refuses, how it says so, how it answers
    dialect: str = "openai"
    reject_params: list[str] = field(default_factory=list)  # refused by name, any dialect
    reject_tools: bool = False  # "this model does not support tools"
    # hidden reasoning tokens billed per answer of a call that carries reasoning_effort
    reasoning_tokens: int = 0
    # words in a generated string field named "reasoning" (a model's explanation)
    reasoning_words: tuple[int, int] = (3, 8)
    # Batch API: seconds from creation until a batch completes; fail_match also fails the
    # batch lines whose text contains it (a partial failure inside a batch)
    batch_delay_s: float = 0.0
    batch_api: bool = True  # False: a server without /v1/batches (404), as local servers


@dataclass
class Script:
    """A canned answer: used for the next chat call whose messages contain ``match``."""

    content: Any = None  # dict/list (JSON-encoded) or str
    tool_arguments: dict[str, Any] | None = None
    match: str = ""
    times: int = 1


@dataclass(frozen=True)
class Dialect:
    """One server's documented quirks, as far as the service meets them."""

    refused_formats: frozenset[str] = frozenset()  # response_format types it refuses
    refused_params: frozenset[str] = frozenset()  # body parameters it refuses by name
    error_style: str = "openai"  # openai | pydantic500 | toplevel | string
    schema_in_json_object: bool = False  # json_object's "schema" constrains the answer
    extra_schema_param: str | None = None  # guided_json (vLLM), format (Ollama)
    ignores_n: bool = False  # one answer per call whatever n says
    headers: bool = True  # x-ratelimit-* headers
    raw_newlines: bool = False  # a raw line break inside a JSON string (llama.cpp's grammar)
    # logprobs from the unconstrained logits: at a grammar-bound position the alternatives
    # include tokens the grammar forbids ("0", a line break), as llama-cpp-python reports
    raw_logprobs: bool = False


DIALECTS = {
    "openai": Dialect(refused_params=frozenset({"guided_json", "format"})),
    # llama-cpp-python's server: json_schema fails its own request model, answered as a
    # 500 carrying pydantic's text; json_object takes a schema; n is not honoured
    "llamacpp": Dialect(
        refused_formats=frozenset({"json_schema"}),
        error_style="pydantic500",
        schema_in_json_object=True,
        ignores_n=True,
        headers=False,
        raw_newlines=True,
        raw_logprobs=True,
    ),
    # older vLLM: top-level {"object": "error"} bodies, guided_json for schemas
    "vllm": Dialect(
        refused_formats=frozenset({"json_schema"}),
        error_style="toplevel",
        extra_schema_param="guided_json",
        headers=False,
    ),
    # older Ollama: no json_schema response_format; its own format parameter takes a schema
    "ollama": Dialect(
        refused_formats=frozenset({"json_schema"}),
        extra_schema_param="format",
        headers=False,
    ),
    # LM Studio: json_schema only, errors as a plain string
    "lmstudio": Dialect(refused_formats=frozenset({"json_object"}), error_style="string"),
    # a strict gateway (extra fields forbidden, one answer per call)
    "strict": Dialect(
        refused_params=frozenset(
            {"prompt_cache_key", "reasoning_effort", "max_completion_tokens", "n"}
        ),
    ),
    # Azure OpenAI (older api-version): deployments, api-key, no prompt_cache_key
    "azure": Dialect(refused_params=frozenset({"prompt_cache_key"})),
}


def _dialect_error(style: str, status: int, message: str, param: str) -> JSONResponse:
    """A refusal as the dialect words it."""
    if style == "pydantic500":  # as llama-cpp-python 0.3.36 words it (seen against it)
        loc = tuple(["body", *param.split(".")])
        text = (
            f"1 validation error:\n  {{'type': 'literal_error', 'loc': {loc!r}, 'msg': "
            f"\"{message}\", 'input': 'json_schema'}}\n\n  File \"llama_cpp/server/app.py\", "
            "line 376, in create_chat_completion\n    POST /v1/chat/completions"
        )
        body = {"message": text, "type": "internal_server_error", "param": None, "code": None}
        return JSONResponse({"error": body}, 500)
    if style == "toplevel":
        body = {"object": "error", "message": message, "type": "BadRequestError", "code": 400}
        return JSONResponse(body, 400)
    if style == "string":
        return JSONResponse({"error": f"'{param}' {message}"}, 400)
    return _error(status, f"Unrecognized request argument supplied: {param}. {message}",
                  "invalid_request_error", "unsupported_parameter")  # fmt: skip


def _error(
    status: int,
    message: str,
    etype: str,
    code: str | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body = {"error": {"message": message, "type": etype, "param": None, "code": code}}
    hdrs = {"x-request-id": f"req_{uuid.uuid4().hex[:16]}", **(headers or {})}
    return JSONResponse(body, status_code=status, headers=hdrs)


def _public(batch: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in batch.items() if not k.startswith("_")}
