"""Public liveness and readiness probes."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from crystallise.api.deps import ServicesDep
from crystallise.readiness import readiness

router = APIRouter(tags=["health"])


@router.get("/health")
def health() -> dict[str, str]:
    """Liveness: the process is running."""
    return {"status": "ok"}


@router.get("/health/ready")
def ready(services: ServicesDep) -> JSONResponse:
    """Readiness: database reachable, disk not full, an OpenAI key configured, default
    models served (or covered by successors). 503 ``degraded`` with ``checks`` otherwise."""
    healthy, body = readiness(services)
    return JSONResponse(body, status_code=200 if healthy else 503)
