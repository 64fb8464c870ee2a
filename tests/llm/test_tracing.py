"""Traces (issue 24, item 4): off unless the OTEL_* variables ask; when on, one span per job,
per stage and per model call with the GenAI attributes, and no paper text unless allowed."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from crystallise.api.app import create_app
from crystallise.common import tracing
from tests.conftest import make_settings
from tests.fake_openai import FakeOpenAIServer

SECRET_TITLE = "Zebrafish secret title 4711"


def test_off_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("OTEL_TRACES_EXPORTER", "OTEL_EXPORTER_OTLP_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)
    assert tracing.enabled_by_environment() is None
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318")
    assert tracing.enabled_by_environment() == "otlp"
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "none")
    assert tracing.enabled_by_environment() is None


def test_job_stage_and_call_spans(tmp_path: Path, fake: FakeOpenAIServer) -> None:
    exporter = InMemorySpanExporter()
    assert tracing.configure(exporter)  # once per process (the global provider)
    exporter.clear()
    papers = [{"id": f"p{i}", "title": f"{SECRET_TITLE} {i}", "abstract": "x"} for i in range(4)]
    with TestClient(create_app(make_settings(tmp_path, fake))) as client:
        body = {"papers": papers, "model": "gpt-4.1-mini", "repetitions": 2}
        job_id = client.post("/v1/screening/jobs", json=body).json()["job_id"]
        deadline = time.monotonic() + 60
        while client.get(f"/v1/screening/jobs/{job_id}").json()["status"] != "completed":
            assert time.monotonic() < deadline
            time.sleep(0.05)
    spans = exporter.get_finished_spans()
    exporter.shutdown()  # later tests in this process keep no spans
    names = [s.name for s in spans]
    job = next(s for s in spans if s.name == "crystallise.job")
    assert job.attributes["crystallise.job.id"] == job_id
    assert {"crystallise.stage labelling", "crystallise.stage reasoning"} <= set(names)
    calls = [s for s in spans if s.name == "chat gpt-4.1-mini"]
    assert len(calls) >= 8
    call = calls[0]
    assert call.attributes["gen_ai.request.model"] == "gpt-4.1-mini"
    assert call.attributes["gen_ai.operation.name"] == "chat"
    assert call.attributes["gen_ai.usage.input_tokens"] > 0
    assert call.attributes["gen_ai.usage.output_tokens"] > 0
    assert all(c.context.trace_id == job.context.trace_id for c in calls)
    assert not [s for s in spans if SECRET_TITLE in str(dict(s.attributes or {}))]
