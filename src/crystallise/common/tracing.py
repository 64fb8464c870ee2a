"""OpenTelemetry traces, opt-in: off (no-op) unless the standard ``OTEL_*`` variables ask.

``OTEL_TRACES_EXPORTER=otlp`` (or any ``OTEL_EXPORTER_OTLP_*ENDPOINT``) sends spans over OTLP
HTTP, configured by the usual ``OTEL_EXPORTER_OTLP_*`` variables; ``console`` prints them;
``OTEL_SERVICE_NAME`` names the service (default ``crystallise``). Spans: one per job
(``crystallise.job``), one per job stage (``crystallise.stage <name>``) and one per model
call (``chat <model>``) with the GenAI semantic-convention attributes
(``gen_ai.operation.name``, ``gen_ai.system``, ``gen_ai.request.model``,
``gen_ai.response.model``, ``gen_ai.usage.input_tokens`` / ``output_tokens``). No prompt or
paper text is recorded unless ``CRYSTALLISE_TRACE_CONTENT=true``.
"""

from __future__ import annotations

import os
from typing import Any

from opentelemetry import trace

tracer = trace.get_tracer("crystallise")
_configured = False


def enabled_by_environment() -> str | None:
    """The exporter the OTEL_* variables ask for, or None (tracing off)."""
    exporter = os.environ.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    if exporter == "none" or os.environ.get("OTEL_SDK_DISABLED", "").lower() == "true":
        return None
    if exporter:
        return exporter
    endpoints = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    return "otlp" if any(os.environ.get(v) for v in endpoints) else None


def configure(exporter: Any = None) -> bool:
    """Install a tracer provider once per process when asked (``exporter``: a span exporter
    object, for tests); True when tracing is on."""
    global _configured
    if _configured:
        return True
    kind = "given" if exporter is not None else enabled_by_environment()
    if kind is None:
        return False
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor

    name = os.environ.get("OTEL_SERVICE_NAME") or "crystallise"
    provider = TracerProvider(resource=Resource.create({"service.name": name}))
    if exporter is not None:
        provider.add_span_processor(SimpleSpanProcessor(exporter))
    elif kind == "console":
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter

        provider.add_span_processor(BatchSpanProcessor(ConsoleSpanExporter()))
    else:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    _configured = True
    return True


def content_allowed() -> bool:
    return os.environ.get("CRYSTALLISE_TRACE_CONTENT", "").strip().lower() in ("1", "true", "yes")


def record_usage(span: Any, model_version: str | None, counts: dict[str, int]) -> None:
    """The GenAI usage attributes of one answered call."""
    if not span.is_recording():
        return
    if model_version:
        span.set_attribute("gen_ai.response.model", model_version)
    span.set_attribute("gen_ai.usage.input_tokens", counts["input_tokens"])
    span.set_attribute("gen_ai.usage.output_tokens", counts["output_tokens"])
