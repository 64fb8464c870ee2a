"""Prometheus metrics (``GET /metrics``): model calls, tokens, cost per tenant, jobs, 429s.

Processes on one host report through prometheus_client's multiprocess mode: `crystallise
serve` points ``PROMETHEUS_MULTIPROC_DIR`` at ``<data dir>/metrics`` (cleared at start, in
``cli._share_metrics``)
before anything imports prometheus_client, so the job process it starts (SQLite default)
and any `crystallise worker` started with the same variable write their counts there, and
the API's scrape sums them. A worker on another host serves its own counts with
``crystallise worker --metrics-port N`` (scrape each worker; the job totals are then per
worker). Without the variable (tests, the CLI) the metrics live in the process.
"""

from __future__ import annotations

import os
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from crystallise.tenancy import job_owner

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

MODEL_CALLS = Counter(
    "crystallise_model_calls", "Model calls answered, by model and HTTP status", ["model", "status"]
)
MODEL_TOKENS = Counter(
    "crystallise_model_tokens",
    "Tokens by model and kind (input, cached, output, reasoning)",
    ["model", "kind"],
)
COST = Counter(
    "crystallise_cost_usd", "Estimated cost in USD, by tenant and model", ["tenant", "model"]
)
JOBS = Counter(
    "crystallise_jobs", "Jobs finished, by kind, status and tenant", ["kind", "status", "tenant"]
)
CALL_SECONDS = Histogram(
    "crystallise_model_call_seconds",
    "Latency of one model call",
    ["model"],
    buckets=(0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 40, 80, 160),
)
RATE_LIMITED = Counter("crystallise_rate_limited", "429 answers, by model", ["model"])
IN_PROGRESS = Gauge(
    "crystallise_jobs_in_progress",
    "Jobs running now, by kind",
    ["kind"],
    multiprocess_mode="livesum",
)


def observe_call(model: str, status: int, seconds: float) -> None:
    MODEL_CALLS.labels(model, str(status)).inc()
    CALL_SECONDS.labels(model).observe(seconds)
    if status == 429:
        RATE_LIMITED.labels(model).inc()


def observe_usage(model: str, counts: dict[str, int], cost: float) -> None:
    """Tokens (``llm.cost.normalise_usage``'s shape) and cost of one answered call, charged
    to the tenant the work is for."""
    fresh = counts["input_tokens"] - counts["cached_tokens"]
    for kind, value in (("input", fresh), ("cached", counts["cached_tokens"]),
                        ("output", counts["output_tokens"]),
                        ("reasoning", counts["reasoning_tokens"])):  # fmt: skip
        if value > 0:
            MODEL_TOKENS.labels(model, kind).inc(value)
    if cost > 0:
        COST.labels(job_owner(), model).inc(cost)


def exposition(extra: Any = None) -> bytes:
    """The scrape: every process's values in multiprocess mode, else this process's."""
    from prometheus_client import REGISTRY

    registry: Any = REGISTRY
    if os.environ.get(MULTIPROC_ENV):
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    if extra is not None:
        scratch = CollectorRegistry()
        scratch.register(extra)
        return bytes(generate_latest(registry)) + bytes(generate_latest(scratch))
    return bytes(generate_latest(registry))
