"""Structured output and parameters across OpenAI-compatible servers: every strategy, the
auto discovery (one failed call per endpoint and model), dropped and renamed parameters,
n fan-out, Azure, and honest error classification, against the fake's dialects."""

from __future__ import annotations

import asyncio
import json
from typing import Any, Literal

import pytest
from pydantic import BaseModel

from crystallise.config.model_capabilities import capabilities_for, get_capabilities
from crystallise.config.settings import Settings
from crystallise.llm.client import LLMClient
from crystallise.llm.compat import Strategy, extract_json, rejected_feature
from crystallise.llm.errors import ErrorCategory, LLMError
from tests.conftest import make_settings
from tests.fake_openai import FakeOpenAIServer


class Verdict(BaseModel):
    reasoning: str
    score: Literal[1, 2, 3, 4, 5]


MESSAGES = [
    {"role": "system", "content": "Rate the paper."},
    {"role": "user", "content": "A randomised trial of aspirin."},
]


def _client(tmp_path: object, fake: FakeOpenAIServer, **overrides: Any) -> LLMClient:
    values: dict[str, Any] = {"allow_unknown_models": None, "retry_delays": [0.01]}
    values.update(overrides)
    return LLMClient(make_settings(tmp_path, fake, **values))


def _failed(fake: FakeOpenAIServer) -> int:
    return sum(n for status, n in fake.state.statuses.items() if status >= 400)


@pytest.mark.parametrize(
    ("dialect", "strategy"),
    [
        ("openai", Strategy.JSON_SCHEMA),
        ("lmstudio", Strategy.JSON_SCHEMA),
        ("llamacpp", Strategy.JSON_OBJECT),
        ("vllm", Strategy.JSON_OBJECT),
        ("ollama", Strategy.JSON_OBJECT),
    ],
)
async def test_auto_finds_a_strategy_with_one_failed_call(
    tmp_path: object, fake: FakeOpenAIServer, dialect: str, strategy: Strategy
) -> None:
    fake.configure(dialect=dialect)
    llm = _client(tmp_path, fake)
    try:
        results = await asyncio.gather(
            *(llm.chat(MESSAGES, model="local-7b", output_schema=Verdict) for _ in range(20))
        )
    finally:
        await llm.aclose()
    assert all(isinstance(r.parsed, Verdict) for r in results)
    (profile,) = llm.profiles().values()
    assert profile.strategy is strategy
    assert _failed(fake) == (0 if strategy is Strategy.JSON_SCHEMA else 1)


@pytest.mark.parametrize(
    ("dialect", "strategy"),
    [
        ("openai", "json_schema"),
        ("llamacpp", "json_object"),
        ("vllm", "guided_json"),
        ("ollama", "ollama_format"),
        ("openai", "tool_call"),
        ("llamacpp", "tool_call"),
        ("openai", "prompt"),
        ("lmstudio", "prompt"),
    ],
)
async def test_each_pinned_strategy_gives_valid_answers(
    tmp_path: object, fake: FakeOpenAIServer, dialect: str, strategy: str
) -> None:
    fake.configure(dialect=dialect)
    llm = _client(tmp_path, fake, structured_output=strategy)
    try:
        result = await llm.chat(MESSAGES, model="local-7b", output_schema=Verdict)
    finally:
        await llm.aclose()
    assert isinstance(result.parsed, Verdict) and _failed(fake) == 0
    body = fake.requests()[-1]["body"]
    expected_key = {
        "json_schema": "response_format",
        "json_object": "response_format",
        "guided_json": "guided_json",
        "ollama_format": "format",
        "tool_call": "tools",
        "prompt": None,
    }[strategy]
    if expected_key:
        assert expected_key in body
    else:
        assert not {"response_format", "tools", "guided_json", "format"} & set(body)
    if strategy != "json_schema":  # the schema is also spelled out for the model
        assert "must match this JSON Schema" in body["messages"][0]["content"]


async def test_auto_walks_down_to_tool_calls_then_prompt(
    tmp_path: object, fake: FakeOpenAIServer
) -> None:
    # a server that refuses json_schema, json_object and tools: JSON in the prompt
    fake.configure(dialect="openai", reject_params=["response_format"], reject_tools=True)
    llm = _client(tmp_path, fake)
    try:
        result = await llm.chat(MESSAGES, model="tiny", output_schema=Verdict)
        again = await llm.chat(MESSAGES, model="tiny", output_schema=Verdict)
    finally:
        await llm.aclose()
    assert isinstance(result.parsed, Verdict) and isinstance(again.parsed, Verdict)
    (profile,) = llm.profiles().values()
    assert profile.strategy is Strategy.PROMPT
    assert _failed(fake) == 3  # json_schema, json_object, tool_call: once each, then learned


async def test_a_pinned_strategy_the_server_refuses_is_a_validation_error_naming_the_fix(
    tmp_path: object, fake: FakeOpenAIServer
) -> None:
    fake.configure(dialect="llamacpp")
    llm = _client(tmp_path, fake, structured_output="json_schema")
    try:
        with pytest.raises(LLMError) as info:
            await llm.chat(MESSAGES, model="gemma", output_schema=Verdict)
    finally:
        await llm.aclose()
    err = info.value
    assert err.category is ErrorCategory.VALIDATION and not err.retryable and err.stops_job
    assert "response_format" in err.message and "CRYSTALLISE_STRUCTURED_OUTPUT" in err.message
    assert _failed(fake) == 1  # not retried


async def test_refused_parameters_are_dropped_or_renamed_once(
    tmp_path: object, fake: FakeOpenAIServer
) -> None:
    fake.configure(dialect="strict")
    llm = _client(tmp_path, fake)
    try:
        for _ in range(3):
            result = await llm.chat(
                MESSAGES,
                model="gpt-5-nano",
                output_schema=Verdict,
                max_output_tokens=200,
                reasoning_effort="minimal",
                prompt_cache_key="job-1",
            )
            assert isinstance(result.parsed, Verdict)
    finally:
        await llm.aclose()
    body = fake.requests()[-1]["body"]
    assert "prompt_cache_key" not in body and "reasoning_effort" not in body
    assert body["max_tokens"] == 200 and "max_completion_tokens" not in body
    assert _failed(fake) == 2  # one per refused parameter, for the whole client


async def test_a_refused_max_tokens_is_sent_as_max_completion_tokens(
    tmp_path: object, fake: FakeOpenAIServer
) -> None:
    # a gateway in front of an OpenAI reasoning model: max_tokens refused by name
    fake.configure(reject_params=["max_tokens"])
    llm = _client(tmp_path, fake)
    try:
        for _ in range(2):
            await llm.chat(
                MESSAGES, model="gpt-5-nano", output_schema=Verdict, max_output_tokens=99
            )
    finally:
        await llm.aclose()
    assert fake.requests()[-1]["body"]["max_completion_tokens"] == 99
    assert _failed(fake) == 1


async def test_n_refused_or_ignored_becomes_n_calls(
    tmp_path: object, fake: FakeOpenAIServer
) -> None:
    for dialect in ("strict", "llamacpp"):
        fake.reset()
        fake.configure(dialect=dialect)
        llm = _client(tmp_path, fake, structured_output="json_object")
        try:
            result = await llm.chat(MESSAGES, model="gpt-4.1", output_schema=Verdict, n=3)
            second = await llm.chat(MESSAGES, model="gpt-4.1", output_schema=Verdict, n=3)
        finally:
            await llm.aclose()
        assert len(result.choices) == 3 and len(second.choices) == 3, dialect
        assert all("n" not in r["body"] for r in fake.requests()[-3:])
        assert result.usage is not None and result.usage["prompt_tokens"] > 0


async def test_a_bad_answer_is_repaired_once_with_what_was_wrong(
    tmp_path: object, fake: FakeOpenAIServer
) -> None:
    fake.configure(invalid_json=1)
    llm = _client(tmp_path, fake, structured_output="prompt")
    try:
        result = await llm.chat(MESSAGES, model="local", output_schema=Verdict)
    finally:
        await llm.aclose()
    assert isinstance(result.parsed, Verdict)
    repair = fake.requests()[-1]["body"]["messages"]
    assert repair[-2]["role"] == "assistant" and "not valid" in repair[-1]["content"]


async def test_azure_deployments_api_version_and_api_key(
    tmp_path: object, fake: FakeOpenAIServer
) -> None:
    fake.configure(dialect="azure")
    root = fake.url.removesuffix("/v1")
    llm = _client(tmp_path, fake, openai_base_url=root, azure_api_version="2024-10-21")
    try:
        result = await llm.chat(
            MESSAGES, model="my-gpt41-deployment", output_schema=Verdict, prompt_cache_key="k"
        )
    finally:
        await llm.aclose()
    assert isinstance(result.parsed, Verdict)
    record = fake.requests()[-1]
    assert record["body"]["model"] == "my-gpt41-deployment"
    assert "prompt_cache_key" not in record["body"]  # refused once, then dropped


async def test_errors_are_classified_honestly(tmp_path: object, fake: FakeOpenAIServer) -> None:
    llm = _client(tmp_path, fake)
    try:
        # a 400 naming no parameter: this request's own problem (stays with its item)
        fake.configure(fail_match="aspirin", fail_match_status=422)
        with pytest.raises(LLMError) as info:
            await llm.chat(MESSAGES, model="local", output_schema=Verdict)
        assert info.value.category is ErrorCategory.VALIDATION and info.value.item
        # a real outage stays transient (retried, then reported as such)
        fake.configure(fail_match="", fail_statuses=[503, 503])
        with pytest.raises(LLMError) as info:
            await llm.chat(MESSAGES, model="local", output_schema=Verdict)
        assert info.value.category is ErrorCategory.TRANSIENT
    finally:
        await llm.aclose()


def test_rejection_messages_name_the_parameter() -> None:
    body = {"model": "m", "messages": [], "response_format": {}, "n": 2, "prompt_cache_key": "x"}
    llama = "1 validation error for CreateChatCompletionRequest\nresponse_format.type\n  Input"
    assert rejected_feature(llama, body) == "response_format"
    assert rejected_feature('{"error": "\'n\' is not supported."}', body) == "n"
    assert rejected_feature("Unrecognized request argument supplied: prompt_cache_key", body) == (
        "prompt_cache_key"
    )
    assert rejected_feature("context length exceeded", body) is None
    assert extract_json('Sure!\n```json\n{"a": 1}\n```\nDone.') == '{"a": 1}'
    assert extract_json('Here: {"a": {"b": 2}} ok') == '{"a": {"b": 2}}'


def test_unknown_models_against_other_servers_and_overrides(tmp_path: object) -> None:
    local = Settings(_env_file=None, openai_base_url="http://127.0.0.1:8080/v1")  # type: ignore[call-arg]
    assert capabilities_for(local, "qwen2.5-7b-instruct").supports_temperature
    openai = Settings(_env_file=None)  # type: ignore[call-arg]
    with pytest.raises(LLMError, match="Unknown model"):
        capabilities_for(openai, "qwen2.5-7b-instruct")
    assert get_capabilities("openai/gpt-4.1").supports_n  # a gateway's prefix
    overrides = json.dumps(
        {"llama3": {"context_window": 8192, "max_output_tokens": 1024, "supports_n": True,
                    "supports_logprobs": True, "structured_output": "json_object"}}
    )  # fmt: skip
    import os

    os.environ["CRYSTALLISE_MODEL_OVERRIDES"] = overrides
    try:
        configured = Settings(_env_file=None, openai_base_url="http://127.0.0.1:1/v1")  # type: ignore[call-arg]
    finally:
        del os.environ["CRYSTALLISE_MODEL_OVERRIDES"]
    caps = capabilities_for(configured, "llama3")
    assert (caps.context_window, caps.max_output_tokens, caps.max_input_tokens) == (
        8192,
        1024,
        7168,
    )
    assert caps.supports_n and caps.supports_logprobs and caps.structured_output == "json_object"


def test_every_flow_through_http_on_a_llama_cpp_server(
    tmp_path: object, fake: FakeOpenAIServer
) -> None:
    """The issue's report, through the API: against llama-cpp-python's dialect the criteria
    endpoints answered 500 and screening jobs failed. Now they complete, learning the
    dialect from one failed call, and the config API shows what was learned."""
    from fastapi.testclient import TestClient

    from crystallise.api.app import create_app

    fake.configure(dialect="llamacpp")
    settings = make_settings(
        tmp_path, fake, allow_unknown_models=None, service_model="gemma3", openai_api_key=""
    )
    with TestClient(create_app(settings)) as api:
        assert api.get("/health/ready").json()["checks"]["openai_key"] == "not_required"
        for path, body in [
            ("/v1/criteria/analyze-question", {"research_question": "Does exercise help?"}),
            ("/v1/criteria/picos", {"project_description": "RCTs of metformin in T2D"}),
        ]:
            response = api.post(path, json=body)
            assert response.status_code == 200, response.text
        papers = [{"id": f"p{i}", "title": f"Trial {i}", "abstract": "Adults."} for i in range(6)]
        job = api.post(
            "/v1/screening/jobs",
            json={"papers": papers, "criteria": [{"name": "P", "type": "include", "value": "A"}],
                  "repetitions": 3},
        ).json()  # fmt: skip
        import time

        deadline = time.monotonic() + 60
        while (status := api.get(f"/v1/screening/jobs/{job['job_id']}").json())["status"] not in (
            "completed",
            "failed",
        ):
            assert time.monotonic() < deadline
            time.sleep(0.1)
        assert status["status"] == "completed", status
        info = api.get("/v1/config/models/gemma3").json()
        assert info["dialect"]["structured_output"] == "json_object", info
        assert info["in_capability_table"] is False and info["capabilities"]["supports_n"] is False
        assert api.get("/v1/config/models/openai/gpt-4.1").json()["in_capability_table"]
    assert _failed(fake) == 1  # one rejected call taught the whole process


async def test_a_choice_failing_its_schema_does_not_mark_n_unsupported(
    tmp_path: object, fake: FakeOpenAIServer
) -> None:
    fake.configure(invalid_json=1)  # the first of the three answers is broken
    llm = _client(tmp_path, fake)
    try:
        result = await llm.chat(MESSAGES, model="gpt-4.1", output_schema=Verdict, n=3)
        (profile,) = llm.profiles().values()
    finally:
        await llm.aclose()
    assert len(result.choices) == 2 and result.answered == 3
    assert "n" not in profile.dropped and len(fake.requests()) == 1
