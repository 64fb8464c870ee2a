"""Tenant budgets: a job on the server's provider key is refused when the tenant's spend this
calendar month (UTC), plus what its unfinished jobs may still spend, plus the job's estimate
would pass its ``budget_usd`` (CRYSTALLISE_TENANTS). ``GET /v1/usage`` shows the figures."""

from __future__ import annotations

from typing import Any

from crystallise.errors import CrystalliseError
from crystallise.screening.estimate import format_usd
from crystallise.services import Services
from crystallise.tenancy import current_caller, job_owner, month_start


class OverBudget(CrystalliseError):
    """402: the tenant's monthly budget does not cover the job."""

    status_code = 402


async def check_budget(services: Services, estimate: float, key_source: str) -> None:
    """402 naming the budget, the spend and the estimate when the job does not fit."""
    caller = current_caller.get()
    tenant = services.settings.tenants.get(job_owner())
    if key_source != "server" or tenant is None or tenant.budget_usd is None:
        return
    if caller is not None and caller.admin:
        return
    figures = (await services.store.spend(month_start(), job_owner())).get(job_owner(), {})
    spent = figures.get("spent_usd", 0.0) + figures.get("reserved_usd", 0.0)
    if spent + estimate > tenant.budget_usd:
        raise OverBudget(
            f"Over budget: tenant '{job_owner()}' has a budget of {format_usd(tenant.budget_usd)} "
            f"this month (UTC), has spent or reserved {format_usd(spent)}, and this job is "
            f"estimated at {format_usd(estimate)}; ask an admin to raise budget_usd in "
            "CRYSTALLISE_TENANTS, or send X-OpenAI-API-Key to run it on your own key"
        )


async def usage_report(services: Services) -> dict[str, Any]:
    """This month's jobs and spend: the caller's tenant, or every tenant for an admin."""
    caller = current_caller.get()
    scope = caller.scope if caller else None
    since = month_start()
    figures = await services.store.spend(since, scope)
    names = [scope] if scope is not None else sorted({*figures, *services.settings.tenants})
    tenants = []
    for name in names:
        row = figures.get(name, {})
        budget = services.settings.tenants.get(name)
        tenants.append(
            {
                "tenant": name,
                "jobs": int(row.get("jobs", 0)),
                "spent_usd": round(row.get("spent_usd", 0.0), 6),
                "reserved_usd": round(row.get("reserved_usd", 0.0), 6),
                "own_key_usd": round(row.get("own_key_usd", 0.0), 6),
                "budget_usd": budget.budget_usd if budget else None,
            }
        )
    return {"period_start": since.isoformat().replace("+00:00", "Z"), "tenants": tenants}
