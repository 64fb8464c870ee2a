"""Public liveness and readiness probes."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from crystallise.api.deps import ServicesDep
from crystallise.config.model_capabilities import RetiredModelPolicy, shutdown_warnings
from crystallise.db.engine import ping
from crystallise.db.queue_status import live_workers

router = APIRouter(tags=["health"])


@router.get("/health")
def health() -> dict[str, str]:
    """Liveness: the process is running."""
    return {"status": "ok"}


@router.get("/health/ready")
def ready(services: ServicesDep) -> JSONResponse:
    """Readiness: database reachable, an OpenAI key configured, default models not shut down."""
    database = ping(services.engine)
    key = "configured" if services.settings.server_openai_key else "missing"
    models = {c.service_id: c.model for c in services.configs.all()}
    settings = services.settings
    policy: RetiredModelPolicy = (
        "reject" if settings.retired_model_policy == "reject" else "successor"
    )
    warnings, past_shutdown = shutdown_warnings(models, settings.today, policy)
    healthy = database == "ok" and key == "configured" and not past_shutdown
    body: dict[str, Any] = {
        "status": "ready" if healthy else "degraded",
        "checks": {"database": database, "openai_key": key},
    }
    if services.settings.uses_queue:
        workers = live_workers(services.engine, services.settings.worker_stalled_after_s)
        body["checks"]["workers"] = workers if workers is not None else "unknown"
        if not workers:
            warnings.append("No live `crystallise worker`: queued jobs wait until one starts.")
    if warnings:
        body["warnings"] = warnings
    return JSONResponse(body, status_code=200 if healthy else 503)
