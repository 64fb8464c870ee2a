"""What a tenant has spent: ``GET /v1/usage`` (its own; an admin key sees every tenant)."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel

from crystallise.api.deps import ServicesDep
from crystallise.jobs.budget import usage_report

router = APIRouter(tags=["usage"])


class TenantUsage(BaseModel):
    tenant: str
    jobs: int
    spent_usd: float
    reserved_usd: float
    own_key_usd: float
    budget_usd: float | None


class UsageResponse(BaseModel):
    period_start: str
    tenants: list[TenantUsage]


@router.get("/usage", response_model=UsageResponse)
async def usage(services: ServicesDep) -> UsageResponse:
    """This calendar month (UTC): jobs, cost tallied on the server's key, cost still reserved
    by unfinished jobs, cost run on the caller's own key, and the budget."""
    return UsageResponse.model_validate(await usage_report(services))
