"""Public liveness and readiness probes."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from crystallise.api.deps import ServicesDep
from crystallise.config.model_capabilities import RetiredModelPolicy, shutdown_warnings
from crystallise.db.engine import ping
from crystallise.db.queue_status import live_workers

router = APIRouter(tags=["health"])
MIN_FREE_BYTES = 64 * 2**20  # below this the embedded database cannot be trusted to write


@router.get("/health")
def health() -> dict[str, str]:
    """Liveness: the process is running."""
    return {"status": "ok"}


@router.get("/health/ready")
def ready(services: ServicesDep) -> JSONResponse:
    """Readiness: database reachable, disk not full, an OpenAI key configured, default
    models served (or covered by successors). 503 ``degraded`` with ``checks`` otherwise."""
    settings = services.settings
    database = ping(services.engine)
    disk = _disk(settings.data_dir) if not settings.is_postgres else "ok"
    key = "configured" if settings.server_openai_key else "missing"
    warnings: list[str] = []
    past_shutdown = False
    if database == "ok":
        models = {c.service_id: c.model for c in services.configs.all()}
        policy: RetiredModelPolicy = (
            "reject" if settings.retired_model_policy == "reject" else "successor"
        )
        warnings, past_shutdown = shutdown_warnings(models, settings.today, policy)
    healthy = database == "ok" and disk == "ok" and key == "configured" and not past_shutdown
    body: dict[str, Any] = {
        "status": "ready" if healthy else "degraded",
        "checks": {"database": database, "disk": disk, "openai_key": key},
    }
    if settings.uses_queue and database == "ok":
        workers = live_workers(services.engine, settings.worker_stalled_after_s)
        body["checks"]["workers"] = workers if workers is not None else "unknown"
        if not workers:
            warnings.append("No live `crystallise worker`: queued jobs wait until one starts.")
    if warnings:
        body["warnings"] = warnings
    return JSONResponse(body, status_code=200 if healthy else 503)


def _disk(data_dir: Path) -> str:
    """``ok``, or ``low: N MB free`` under MIN_FREE_BYTES where the SQLite file lives."""
    try:
        free = shutil.disk_usage(data_dir).free
    except OSError as exc:
        return f"error: {type(exc).__name__}"
    return "ok" if free >= MIN_FREE_BYTES else f"low: {free // 2**20} MB free"
