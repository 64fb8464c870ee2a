"""The one door to the model, its transport: pooled clients, pacing, retries, the dialect
each endpoint speaks, deadlines, usage. Shaping a call is ``llm/shaping.py``; reading its
answer, ``llm/answers.py``.

One long-lived ``AsyncOpenAI`` per (base URL, API key) shares a connection pool; the key is
passed down explicitly (never through ``os.environ``). Built and closed with the app lifespan.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections.abc import Awaitable, Callable, Sequence
from contextvars import ContextVar
from dataclasses import replace
from typing import Any, TypeVar

import httpx2
import openai
from openai import AsyncAzureOpenAI, AsyncOpenAI, DefaultAioHttpClient
from opentelemetry import trace
from opentelemetry.trace import SpanKind
from pydantic import BaseModel

from crystallise.common import metrics, tracing
from crystallise.config.model_capabilities import (
    ModelCapabilities,
    note_model,
)
from crystallise.config.settings import Settings
from crystallise.llm.answers import (
    ChatResult,
    SchemaMismatch,
    completion_body,
    merge_results,
    read_response,
    repair_messages,
    to_result,
)
from crystallise.llm.compat import (
    FIX,
    STRATEGY_FEATURES,
    CallIntent,
    Profile,
    initial_strategy,
    is_request_rejection,
    provider_text,
    rejected_feature,
)
from crystallise.llm.cost import estimate_cost, normalise_usage
from crystallise.llm.errors import ErrorCategory, LLMError
from crystallise.llm.ratelimit import ProviderLimiter
from crystallise.llm.retry import Patience, async_retry_with_backoff, retry_after_seconds
from crystallise.llm.shaping import (
    CallOptions,
    PreparedCall,
    prepare_call,
    prepare_responses,
)

# A model answer that fails its schema is asked for once more, then reported.
SCHEMA_RETRIES = 1
# Sent to a non-OpenAI server when no key is configured (local servers ignore it).
LOCAL_PLACEHOLDER_KEY = "sk-no-key-required"
# A call may be re-sent this many times as the server names what it refuses.
MAX_ADAPTATIONS = 6


def rejection_error(base_url: str, model: str, feature: str, text: str) -> LLMError:
    """A server's refusal of a parameter it will refuse on every call: ``validation``,
    job-wide, naming the feature and the setting that fixes it."""
    fix = (
        FIX
        if feature in STRATEGY_FEATURES
        else "drop it for this model in CRYSTALLISE_MODEL_OVERRIDES or use another model"
    )
    return LLMError(
        f"The model server at {base_url} does not accept '{feature}' for model '{model}' "
        f"({text[:300]}); {fix}.",
        ErrorCategory.VALIDATION,
        job_wide=True,
    )


def _observe_usage(model: str, usage: Any, version: Any = None) -> None:
    """Tokens and cost of one answer, for /metrics and the call's trace span."""
    if isinstance(usage, dict | BaseModel) and usage:
        counts = normalise_usage(usage)
        cost = estimate_cost(
            model, counts["input_tokens"], counts["output_tokens"], counts["cached_tokens"]
        )
        metrics.observe_usage(model, counts, cost)
        tracing.record_usage(
            trace.get_current_span(), version if isinstance(version, str) else None, counts
        )


def _span_attributes(intent: CallIntent) -> dict[str, Any]:
    """GenAI semantic-convention attributes of a chat call (text only when allowed)."""
    attributes: dict[str, Any] = {
        "gen_ai.operation.name": "chat",
        "gen_ai.system": "openai",
        "gen_ai.request.model": intent.model,
    }
    if tracing.content_allowed():
        attributes["gen_ai.input.messages"] = json.dumps(intent.messages, ensure_ascii=False)
    return attributes


def _options(options: CallOptions | None, kw: dict[str, Any]) -> CallOptions:
    """How to ask: ``options``, or its fields given as keywords (not both)."""
    if options is not None and kw:
        raise TypeError(f"pass options or its fields, not both ({', '.join(sorted(kw))})")
    return options if options is not None else CallOptions(**kw)


def _key_fingerprint(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()[:16]


class LLMClient:
    """Process-wide gateway to OpenAI-compatible endpoints. Use one per event loop."""

    def __init__(
        self,
        settings: Settings,
        *,
        retry_delays: Sequence[float] | None = None,
    ) -> None:
        self.settings = settings
        self.retry_delays = tuple(
            retry_delays if retry_delays is not None else settings.retry_delays
        )
        self._roots: dict[str, AsyncOpenAI] = {}
        self._clients: dict[tuple[str, str], AsyncOpenAI] = {}
        self._limiters: dict[tuple[str, str, str], ProviderLimiter] = {}
        self._profiles: dict[tuple[str, str], Profile] = {}

    # ---- keys and clients ----------------------------------------------------
    def resolve_key(self, explicit: str | None = None, request_key: str | None = None) -> str:
        """§4.1: explicit → per-request header → OPENAI_API_KEY → CRYSTALLISE_OPENAI_API_KEY."""
        key = explicit or request_key or self.settings.server_openai_key
        if not key and not self.settings.is_openai_endpoint:
            key = LOCAL_PLACEHOLDER_KEY  # local servers take any key (Ollama wants one)
        if not key:
            raise LLMError(
                "No OpenAI API key: send X-OpenAI-API-Key or set CRYSTALLISE_OPENAI_API_KEY.",
                ErrorCategory.AUTH,
            )
        return key

    @property
    def base_url(self) -> str:
        return self.settings.openai_base_url or "https://api.openai.com/v1"

    def openai_client(self, api_key: str) -> AsyncOpenAI:
        """The pooled client for this key; all keys of one endpoint share one pool."""
        base = self.base_url
        cache_key = (base, _key_fingerprint(api_key))
        client = self._clients.get(cache_key)
        if client is None:
            root = self._roots.get(base)
            if root is None:
                root = self._root_client(api_key, base)
                self._roots[base] = root
                client = root
            else:
                client = root.with_options(api_key=api_key)
            self._clients[cache_key] = client
        return client

    def _root_client(self, api_key: str, base: str) -> AsyncOpenAI:
        """OpenAI's client, or the SDK's Azure client (deployment paths, ``api-version``,
        the ``api-key`` header) when CRYSTALLISE_AZURE_API_VERSION is set."""
        common: dict[str, Any] = {
            "api_key": api_key,
            "max_retries": 0,  # we retry ourselves; never multiply attempts
            "timeout": self.settings.request_timeout_s,
            "http_client": DefaultAioHttpClient(timeout=self.settings.request_timeout_s),
        }
        if self.settings.is_azure:
            return AsyncAzureOpenAI(
                azure_endpoint=base, api_version=self.settings.azure_api_version, **common
            )
        return AsyncOpenAI(base_url=base, **common)

    def limiter(self, api_key: str, model: str) -> ProviderLimiter:
        key = (self.base_url, _key_fingerprint(api_key), model)
        limiter = self._limiters.get(key)
        if limiter is None:
            limiter = ProviderLimiter(
                self.settings.max_concurrent_requests,
                adaptive=self.settings.adaptive_concurrency,
                max_concurrency=self.settings.concurrency_ceiling,
            )
            self._limiters[key] = limiter
        return limiter

    def limiters(self) -> dict[tuple[str, str, str], ProviderLimiter]:
        return dict(self._limiters)

    async def aclose(self) -> None:
        for root in self._roots.values():
            await root.close()
        self._roots.clear()
        self._clients.clear()

    # ---- chat completions ----------------------------------------------------
    async def chat(
        self,
        messages: list[dict[str, Any]],
        *,
        model: str,
        options: CallOptions | None = None,
        api_key: str | None = None,
        request_key: str | None = None,
        **kw: Any,
    ) -> ChatResult:
        """One chat completion with pre-flight, pacing, retries and schema validation, in
        the dialect the endpoint and model were found to speak (``compat.Profile``). How to
        ask is ``options``, or ``kw`` as ``CallOptions`` fields."""
        key = self.resolve_key(api_key, request_key)
        options = _options(options, kw)
        call = prepare_call(self.settings, messages, model, options)
        return await self._complete(key, call, options.n)

    def prepare(
        self,
        messages: list[dict[str, Any]],
        *,
        model: str,
        options: CallOptions | None = None,
        **kw: Any,
    ) -> PreparedCall:
        """A call checked against the model's limits (pre-flight) and shaped as an intent;
        ``request_body`` gives it as this endpoint takes it (the Batch API's request lines)."""
        return prepare_call(self.settings, messages, model, _options(options, kw))

    def request_body(self, call: PreparedCall) -> dict[str, Any]:
        """The JSON body this endpoint takes for ``call``, in the dialect learned so far."""
        return self.profile(call.intent.model, call.caps).body(call.intent, [])

    def read_completion(self, call: PreparedCall, completion: dict[str, Any]) -> ChatResult:
        """A completion body (e.g. one line of a Batch API output file) read as ``call``
        asked; an answer that fails its schema raises an item-level LLMError."""
        profile = self.profile(call.intent.model, call.caps)
        strategy = profile.strategy if call.intent.schema is not None else None
        if not isinstance(completion.get("choices"), list):
            raise LLMError("provider answer has no choices", ErrorCategory.TRANSIENT, item=True)
        try:
            return to_result(completion, call.output_schema, strategy, None)
        except SchemaMismatch as exc:
            raise LLMError(
                f"Model answer did not match the schema: {exc}",
                ErrorCategory.VALIDATION,
                item=True,
                bad_answer=True,
            ) from exc

    async def _complete(self, key: str, call: PreparedCall, n: int) -> ChatResult:
        """``n`` answers: one call, or one per answer where the server gives one per call."""
        intent, est_tokens, output_schema = call.intent, call.est_tokens, call.output_schema
        profile = self.profile(intent.model, call.caps)
        if n > 1 and "n" in profile.dropped:
            return await self._fan_out(key, intent, est_tokens, output_schema, n)
        result = await self._send_chat(key, intent, est_tokens, output_schema)
        if result.answered < n:  # the server ignored n: one answer per call from now on
            if "n" not in profile.dropped:
                profile.dropped.add("n")
                profile.learned.append("n ignored; one call per answer")
            rest = await self._fan_out(key, intent, est_tokens, output_schema, n - result.answered)
            result = merge_results([result, rest])
        return result

    def profile(self, model: str, caps: ModelCapabilities) -> Profile:
        """The dialect of (endpoint, model): the operator's strategy, or what auto learned."""
        key = (self.base_url, model)
        profile = self._profiles.get(key)
        if profile is None:
            configured = caps.structured_output
            if configured == "auto":
                configured = self.settings.structured_output
            strategy, pinned = initial_strategy(configured)
            profile = self._profiles[key] = Profile(strategy, pinned)
        return profile

    def profiles(self) -> dict[tuple[str, str], Profile]:
        return dict(self._profiles)

    def dialect_of(self, model: str) -> dict[str, Any] | None:
        """What this client learned about ``model`` on its endpoint (None: no call yet)."""
        profile = self._profiles.get((self.base_url, model))
        if profile is None:
            return None
        return {
            "structured_output": str(profile.strategy),
            "pinned": profile.pinned,
            "dropped": sorted(profile.dropped),
            "renamed": dict(profile.renamed),
            "learned": list(profile.learned),
        }

    async def _fan_out(
        self,
        key: str,
        intent: CallIntent,
        est_tokens: int,
        output_schema: type[BaseModel] | None,
        n: int,
    ) -> ChatResult:
        """``n`` answers as ``n`` calls, for servers that give one answer per call."""
        single = replace(intent, params={**intent.params, "n": 1})
        per_call = max(1, est_tokens // max(n, 1))
        results = await asyncio.gather(
            *(self._send_chat(key, single, per_call, output_schema) for _ in range(n))
        )
        return merge_results(list(results))

    async def _send_chat(
        self,
        key: str,
        intent: CallIntent,
        est_tokens: int,
        output_schema: type[BaseModel] | None,
    ) -> ChatResult:
        """Send under the key's limiter, with the retry policy and the call's deadline."""
        client = self.openai_client(key)
        limiter = self.limiter(key, intent.model)
        profile = self._profiles[(self.base_url, intent.model)]
        repair: list[dict[str, Any]] = []

        async def attempt() -> ChatResult:
            response = await self._post_adapting(
                client, limiter, profile, intent, repair, est_tokens
            )
            strategy = profile.strategy if intent.schema is not None else None
            completion = completion_body(response)
            _observe_usage(intent.model, completion.get("usage"), completion.get("model"))
            result = to_result(completion, output_schema, strategy, response.headers)
            note_model(intent.model, result.model_version)
            return result

        with tracing.tracer.start_as_current_span(
            f"chat {intent.model}", kind=SpanKind.CLIENT, attributes=_span_attributes(intent)
        ):
            return await within_deadline(self._with_schema_retries(attempt, repair, limiter))

    async def _post_adapting(
        self,
        client: AsyncOpenAI,
        limiter: ProviderLimiter,
        profile: Profile,
        intent: CallIntent,
        repair: list[dict[str, Any]],
        est_tokens: int,
    ) -> Any:
        """POST the call in the profile's dialect; a rejection naming a parameter moves the
        profile on and the call goes again at once. Calls carrying an untried feature go
        one at a time, so only the first of them can fail on it."""
        for _ in range(MAX_ADAPTATIONS):
            body = profile.body(intent, repair)
            held = profile.unconfirmed(body)
            if held:
                await profile.lock.acquire()
                body = profile.body(intent, repair)  # the profile may have moved meanwhile
                if not profile.unconfirmed(body):
                    profile.lock.release()
                    held = False
            try:
                response = await self._post(client, limiter, body, est_tokens)
            except openai.APIStatusError as exc:
                text = provider_text(exc)
                feature = rejected_feature(text, body) if is_request_rejection(exc, text) else None
                if feature is None:
                    raise
                if profile.adapt(feature, body):
                    continue
                raise rejection_error(self.base_url, intent.model, feature, text) from exc
            finally:
                if held:
                    profile.lock.release()
            profile.confirm(body)
            return response
        raise LLMError(
            f"The server at {self.base_url} kept rejecting calls to '{intent.model}' after "
            f"{MAX_ADAPTATIONS} adjustments ({'; '.join(profile.learned)}); {FIX}.",
            ErrorCategory.VALIDATION,
            job_wide=True,
        )

    @staticmethod
    async def _post(
        client: AsyncOpenAI, limiter: ProviderLimiter, body: dict[str, Any], est_tokens: int
    ) -> Any:
        async with limiter.slot(est_tokens):
            started = time.monotonic()
            try:
                # The SDK's request path (auth, timeouts, error classes) with the body as
                # prepared: our params are plain JSON, so the SDK's per-call recursive
                # transform of messages and schema (~2 ms of CPU) has nothing to do.
                response = await client.post(
                    "/chat/completions", body=body, cast_to=httpx2.Response, options=_CHAT_OPTIONS
                )
            except openai.APIStatusError as exc:
                limiter.observe(exc.response.headers, exc.status_code)
                metrics.observe_call(body["model"], exc.status_code, time.monotonic() - started)
                if exc.status_code == 429:
                    limiter.on_rate_limited(retry_after_seconds(exc))
                raise
            limiter.observe(response.headers, response.status_code)
            metrics.observe_call(body["model"], response.status_code, time.monotonic() - started)
        return response

    def patience(self, limiter: ProviderLimiter) -> Patience | None:
        """A job's calls wait out 429s on this limiter for CRYSTALLISE_RATE_LIMIT_PATIENCE_S;
        a synchronous request (a caller waiting, CRYSTALLISE_SYNC_TIMEOUT_S) is answered
        429 ``rate_limit`` after the usual retries instead, for the caller to retry."""
        if call_deadline.get() is not None:
            return None
        return Patience(self.settings.rate_limit_patience_s, lambda: limiter.last_success)

    async def _with_schema_retries(
        self,
        attempt: Callable[[], Awaitable[ChatResult]],
        repair: list[dict[str, Any]],
        limiter: ProviderLimiter,
    ) -> ChatResult:
        """A schema mismatch is asked once more, with the bad answer and what was wrong
        with it (a repair); transport faults get the backoff policy."""
        for tries in range(SCHEMA_RETRIES + 1):
            try:
                return await async_retry_with_backoff(
                    attempt,
                    delays=self.retry_delays,
                    passthrough=(SchemaMismatch,),
                    patience=self.patience(limiter),
                )
            except SchemaMismatch as exc:
                if tries >= SCHEMA_RETRIES:
                    raise LLMError(
                        f"Model answer did not match the response schema: {exc}",
                        ErrorCategory.TRANSIENT,
                        bad_answer=True,
                    ) from exc
                repair[:] = repair_messages(exc)
        raise AssertionError("unreachable")

    # ---- Responses API -------------------------------------------------------
    async def responses(
        self,
        input_text: str | list[dict[str, Any]],
        *,
        model: str,
        instructions: str | None = None,
        output_schema: type[BaseModel] | None = None,
        tools: list[dict[str, Any]] | None = None,
        max_output_tokens: int | None = None,
        api_key: str | None = None,
        request_key: str | None = None,
    ) -> ChatResult:
        """A Responses API call (used with file_search over vector stores)."""
        key = self.resolve_key(api_key, request_key)
        kwargs = prepare_responses(
            self.settings, input_text, model, instructions, output_schema, tools, max_output_tokens
        )
        client = self.openai_client(key)
        limiter = self.limiter(key, model)

        async def attempt() -> ChatResult:
            async with limiter.slot():
                try:
                    raw = await client.responses.with_raw_response.create(**kwargs)
                except openai.APIStatusError as exc:
                    limiter.observe(exc.response.headers, exc.status_code)
                    raise
                limiter.observe(raw.headers, raw.status_code)
            result = read_response(raw.parse(), output_schema)
            _observe_usage(model, result.usage)
            return result

        return await within_deadline(
            async_retry_with_backoff(
                attempt, delays=self.retry_delays, patience=self.patience(limiter)
            )
        )


T = TypeVar("T")
# The loop time by which a synchronous HTTP request's model calls must be done (set per
# request by the API from CRYSTALLISE_SYNC_TIMEOUT_S; None in jobs, which have no bound).
call_deadline: ContextVar[tuple[float, float] | None] = ContextVar("call_deadline", default=None)


async def within_deadline(call: Awaitable[T]) -> T:
    bound = call_deadline.get()
    if bound is None:
        return await call
    deadline, budget = bound
    try:
        async with asyncio.timeout_at(deadline):
            return await call
    except TimeoutError:
        raise LLMError(
            f"The request's model calls did not finish within {budget:g} s "
            "(CRYSTALLISE_SYNC_TIMEOUT_S); the provider is slow or down: retry later, or use "
            "an async job.",
            ErrorCategory.TIMEOUT,
            job_wide=True,  # the request's time is up: no further call of it can succeed
        ) from None


_CHAT_OPTIONS: Any = {"security": {"bearer_auth": True}}
