"""The LLM client through the real openai SDK against the fake OpenAI server."""

from __future__ import annotations

import asyncio
import os
import time
from typing import Literal

import pytest
from pydantic import BaseModel

from crystallise.llm.client import LLMClient
from crystallise.llm.cost import tally_usage
from crystallise.llm.errors import ErrorCategory, LLMError
from tests.conftest import SERVER_KEY, make_settings
from tests.fake_openai import FakeOpenAIServer


class Verdict(BaseModel):
    reasoning: str
    score: Literal[1, 2, 3, 4, 5]


MESSAGES = [
    {"role": "system", "content": "Rate."},
    {"role": "user", "content": "A randomised trial of aspirin."},
]


@pytest.fixture
async def llm(tmp_path: object, fake: FakeOpenAIServer):
    client = LLMClient(make_settings(tmp_path, fake))
    yield client
    await client.aclose()


async def test_structured_output_with_n_and_strict_schema(
    llm: LLMClient, fake: FakeOpenAIServer
) -> None:
    result = await llm.chat(MESSAGES, model="gpt-4.1", output_schema=Verdict, n=3, temperature=0.5)
    assert len(result.choices) == 3 and all(isinstance(c.parsed, Verdict) for c in result.choices)
    assert result.model_version.startswith("gpt-4.1-")
    body = fake.requests()[-1]["body"]
    schema = body["response_format"]["json_schema"]
    assert schema["strict"] is True and schema["schema"]["additionalProperties"] is False
    assert body["n"] == 3 and body["temperature"] == 0.5 and body["model"] == "gpt-4.1"


async def test_tool_calling(llm: LLMClient, fake: FakeOpenAIServer) -> None:
    tool = {
        "type": "function",
        "function": {
            "name": "record",
            "strict": True,
            "parameters": {
                "type": "object",
                "properties": {"size": {"type": "integer", "minimum": 10, "maximum": 20}},
                "required": ["size"],
                "additionalProperties": False,
            },
        },
    }
    result = await llm.chat(
        MESSAGES,
        model="gpt-5-mini",
        tools=[tool],
        tool_choice={"type": "function", "function": {"name": "record"}},
    )
    assert 10 <= result.tool_arguments["size"] <= 20  # type: ignore[index]


@pytest.mark.parametrize(
    ("status", "category"),
    [
        (401, ErrorCategory.AUTH),
        (400, ErrorCategory.VALIDATION),
        (500, ErrorCategory.TRANSIENT),
        (503, ErrorCategory.TRANSIENT),
    ],
)
async def test_each_category_surfaces(
    llm: LLMClient, fake: FakeOpenAIServer, status: int, category: ErrorCategory
) -> None:
    if status == 401:
        fake.configure(valid_keys=["sk-other"])
    elif status == 400:
        fake.configure(context_limit=5)
    else:
        fake.configure(fail_statuses=[status] * 4)
    with pytest.raises(LLMError) as info:
        await llm.chat(MESSAGES, model="gpt-4.1")
    assert info.value.category is category
    assert info.value.retryable is (category in {ErrorCategory.TRANSIENT, ErrorCategory.RATE_LIMIT})
    expected_calls = 4 if info.value.retryable else 1  # 1 try + 3 retries, or no retry
    assert fake.state.calls["chat"] == expected_calls


async def test_timeout_is_retryable_category(tmp_path: object, fake: FakeOpenAIServer) -> None:
    llm = LLMClient(make_settings(tmp_path, fake, request_timeout_s=0.3))
    fake.configure(fail_statuses=["timeout"] * 4, timeout_sleep_s=2)
    with pytest.raises(LLMError) as info:
        await llm.chat(MESSAGES, model="gpt-4.1")
    await llm.aclose()
    assert info.value.category is ErrorCategory.TIMEOUT and info.value.retryable


async def test_retry_recovers_and_honours_retry_after(
    llm: LLMClient, fake: FakeOpenAIServer
) -> None:
    fake.configure(fail_statuses=[429], retry_after_s=0.4)
    start = time.monotonic()
    result = await llm.chat(MESSAGES, model="gpt-4.1", output_schema=Verdict)
    assert isinstance(result.parsed, Verdict)
    assert time.monotonic() - start >= 0.4  # waited what the provider asked, not 0.01 s
    assert fake.state.calls["chat"] == 2


async def test_sdk_retries_are_off(llm: LLMClient) -> None:
    assert llm.openai_client(SERVER_KEY).max_retries == 0


async def test_concurrent_callers_keep_their_own_keys(
    llm: LLMClient, fake: FakeOpenAIServer
) -> None:
    before = dict(os.environ)

    async def call(key: str, tag: str) -> None:
        for _ in range(5):
            await llm.chat([{"role": "user", "content": tag}], model="gpt-4.1", request_key=key)

    await asyncio.gather(call("sk-alice-111111111", "alice"), call("sk-bob-2222222222", "bob"))
    seen = {(r["body"]["messages"][0]["content"], r["key"]) for r in fake.requests()}
    assert seen == {("alice", "sk-alice-111111111"), ("bob", "sk-bob-2222222222")}
    assert dict(os.environ) == before  # nothing written to the process environment
    # both keys share the same endpoint's connection pool
    assert (
        llm.openai_client("sk-alice-111111111")._client
        is llm.openai_client("sk-bob-2222222222")._client
    )


async def test_key_resolution_order(tmp_path: object, fake: FakeOpenAIServer) -> None:
    llm = LLMClient(
        make_settings(tmp_path, fake, openai_api_key="", openai_env_api_key="sk-env-key-123")
    )
    assert llm.resolve_key("sk-explicit", "sk-request") == "sk-explicit"
    assert llm.resolve_key(None, "sk-request") == "sk-request"
    assert llm.resolve_key() == "sk-env-key-123"
    no_key = LLMClient(make_settings(tmp_path, fake, openai_api_key="", openai_base_url=""))
    with pytest.raises(LLMError) as info:
        no_key.resolve_key()  # OpenAI needs a key
    assert info.value.category is ErrorCategory.AUTH
    local = LLMClient(make_settings(tmp_path, fake, openai_api_key=""))
    assert local.resolve_key()  # a local server gets a placeholder (Ollama wants one)


async def test_usage_tally_matches_server(llm: LLMClient, fake: FakeOpenAIServer) -> None:
    results = await asyncio.gather(
        *(
            llm.chat([{"role": "user", "content": f"paper {i}"}], model="gpt-5-nano")
            for i in range(6)
        )
    )
    usage = tally_usage("gpt-5-nano", [r.usage for r in results if not isinstance(r, LLMError)])
    assert usage["input_tokens"] == fake.state.prompt_tokens
    assert usage["output_tokens"] == fake.state.completion_tokens


async def test_schema_mismatch_retried_once_then_reported(
    llm: LLMClient, fake: FakeOpenAIServer
) -> None:
    fake.configure(invalid_json=1)
    result = await llm.chat(MESSAGES, model="gpt-4.1", output_schema=Verdict)
    assert isinstance(result.parsed, Verdict) and fake.state.calls["chat"] == 2
    fake.reset()
    fake.configure(invalid_json=10)
    with pytest.raises(LLMError) as info:
        await llm.chat(MESSAGES, model="gpt-4.1", output_schema=Verdict)
    assert "schema" in info.value.message


async def test_refusal_and_truncation_are_errors(llm: LLMClient, fake: FakeOpenAIServer) -> None:
    fake.configure(refuse=True)
    with pytest.raises(LLMError, match="refused"):
        await llm.chat(MESSAGES, model="gpt-4.1", output_schema=Verdict)
    fake.configure(refuse=False, finish_length=True)
    with pytest.raises(LLMError, match="cut off"):
        await llm.chat(MESSAGES, model="gpt-4.1", output_schema=Verdict)


async def test_preflight_rejects_without_calling(llm: LLMClient, fake: FakeOpenAIServer) -> None:
    with pytest.raises(LLMError, match="temperature"):
        await llm.chat(MESSAGES, model="gpt-5-nano", temperature=0.0)
    with pytest.raises(LLMError, match="accepts at most"):
        await llm.chat([{"role": "user", "content": "word " * 1_100_000}], model="gpt-4.1")
    assert fake.state.calls["chat"] == 0


async def test_responses_api(llm: LLMClient, fake: FakeOpenAIServer) -> None:
    result = await llm.responses(
        "A trial of aspirin", model="gpt-4.1", output_schema=Verdict, instructions="Rate it"
    )
    assert isinstance(result.parsed, Verdict) and result.usage["input_tokens"] > 0  # type: ignore[index]
    assert fake.requests("responses")[-1]["body"]["text"]["format"]["strict"] is True


async def test_local_server_models_get_max_tokens(tmp_path: object, fake: FakeOpenAIServer) -> None:
    llm = LLMClient(make_settings(tmp_path, fake, allow_unknown_models=True))
    await llm.chat(MESSAGES, model="llama3.1:8b", max_output_tokens=64, temperature=0.1)
    body = fake.requests()[-1]["body"]
    assert (
        body["max_tokens"] == 64
        and "max_completion_tokens" not in body
        and body["temperature"] == 0.1
    )
    # an OpenAI model name on another server still gets max_tokens: llama-cpp-python
    # silently ignores max_completion_tokens, which would leave the answer uncapped
    await llm.chat(MESSAGES, model="gpt-4.1", max_output_tokens=64)
    assert fake.requests()[-1]["body"]["max_tokens"] == 64
    await llm.aclose()
    root = fake.url.removesuffix("/v1")
    azure = LLMClient(
        make_settings(tmp_path, fake, openai_base_url=root, azure_api_version="2024-10-21")
    )
    await azure.chat(MESSAGES, model="gpt-4.1", max_output_tokens=64)  # OpenAI's rules
    assert fake.requests()[-1]["body"]["max_completion_tokens"] == 64
    await azure.aclose()


async def test_calls_go_over_the_aiohttp_transport_with_the_settings_timeout(
    tmp_path: object, fake: FakeOpenAIServer
) -> None:
    """The pooled client speaks HTTP through aiohttp (issue 28: client CPU per call), and the
    request timeout still bounds a call that outlives it (as a retryable timeout)."""
    from openai._vendor.httpx_aiohttp import AiohttpTransport

    llm = LLMClient(make_settings(tmp_path, fake, request_timeout_s=0.5), retry_delays=[])
    try:
        assert (await llm.chat(MESSAGES, model="gpt-4.1")).content
        (root,) = llm._roots.values()
        assert isinstance(root._client._transport, AiohttpTransport)
        fake.configure(latency_s=3.0)
        started = time.monotonic()
        with pytest.raises(LLMError) as caught:
            await llm.chat(MESSAGES, model="gpt-4.1")
        assert caught.value.retryable and time.monotonic() - started < 2.5
    finally:
        await llm.aclose()
