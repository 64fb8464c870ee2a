"""``GET /metrics``: Prometheus text for the operator (an admin key once keys are set)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST
from prometheus_client.core import GaugeMetricFamily

from crystallise.api.deps import ServicesDep, demand_admin
from crystallise.common.metrics import exposition
from crystallise.db.jobs import JOB_KINDS
from crystallise.services import Services

router = APIRouter(tags=["operations"])


def require_operator(request: Request, services: ServicesDep) -> None:
    """Open in dev mode; with any key configured, only an admin key may scrape."""
    settings = services.settings
    if settings.auth_enabled or settings.admin_keys:
        demand_admin(request, settings.admin_keys)


class _QueueDepth:
    """Unfinished jobs by kind and status, read from the database at scrape time."""

    def __init__(self, counts: dict[tuple[str, str], int]) -> None:
        self.counts = counts

    def collect(self) -> Iterator[Any]:
        family = GaugeMetricFamily(
            "crystallise_queue_depth",
            "Unfinished jobs by kind and status",
            labels=["kind", "status"],
        )
        for kind in JOB_KINDS:
            for status in ("pending", "running"):
                family.add_metric([kind, status], self.counts.get((kind, status), 0))
        yield family


def _scrape(services: Services) -> bytes:
    return exposition(_QueueDepth(services.jobs.status_counts()))


@router.get("/metrics", dependencies=[Depends(require_operator)], include_in_schema=False)
async def metrics(services: ServicesDep) -> Response:
    """Model calls, tokens, cost per tenant, jobs, 429s, latency, jobs in progress, queue."""
    body = await run_in_threadpool(_scrape, services)
    return Response(body, media_type=CONTENT_TYPE_LATEST)
