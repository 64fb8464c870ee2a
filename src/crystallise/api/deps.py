"""Request dependencies: the services container, auth, and the per-request OpenAI key."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, Header, HTTPException, Request

from crystallise.config.settings import Settings
from crystallise.errors import BadInput
from crystallise.jobs.submit import Submission
from crystallise.services import Services
from crystallise.tenancy import ADMIN_TENANT, DEFAULT_TENANT, Caller, current_caller

MISSING_KEY = "Missing API key. Send X-API-Key: <key> or Authorization: Bearer <key>."
INVALID_KEY = "Invalid API key."


def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]


def presented_key(request: Request) -> str | None:
    key = request.headers.get("x-api-key")
    if key:
        return key
    auth = request.headers.get("authorization", "")
    if auth[:7].lower() == "bearer ":
        return auth[7:].strip() or None
    return None


def matches_any(presented: str, allowed: list[str]) -> bool:
    # Compare against every key (no early exit) in constant time per key.
    found = False
    for key in allowed:
        found |= hmac.compare_digest(presented.encode(), key.encode())
    return found


async def require_api_key(request: Request, services: ServicesDep) -> None:
    """401 unless a configured service, tenant or admin key is presented (dev mode when none
    is configured); the caller's tenant is then the scope of every job query of the request.
    Async on purpose: the context variable it sets reaches the route (a sync dependency runs
    in a thread whose context is thrown away)."""
    settings = services.settings
    if not settings.auth_enabled:
        admin = bool(settings.admin_keys) and matches_any(
            presented_key(request) or "", settings.admin_keys
        )
        current_caller.set(Caller(ADMIN_TENANT, admin=True) if admin else Caller(DEFAULT_TENANT))
        return
    presented = presented_key(request)
    if not presented:
        raise HTTPException(status_code=401, detail=MISSING_KEY)
    current_caller.set(caller_for(settings, presented))


def caller_for(settings: Settings, presented: str) -> Caller:
    """The caller a key stands for; 401 for a key nobody was given."""
    if matches_any(presented, settings.admin_keys):
        return Caller(ADMIN_TENANT, admin=True)
    tenant: str | None = None
    for key, name in settings.tenant_keys.items():  # every key compared, constant time each
        if hmac.compare_digest(presented.encode(), key.encode()):
            tenant = name
    if tenant is None:
        raise HTTPException(status_code=401, detail=INVALID_KEY)
    return Caller(tenant)


def require_admin_key(request: Request, services: ServicesDep) -> None:
    """When admin keys are configured, config writes need one of them (403 otherwise)."""
    if services.settings.admin_keys:
        demand_admin(request, services.settings.admin_keys)


def demand_admin(request: Request, admins: list[str]) -> None:
    """401 without a key, 403 unless it is one of ``admins``."""
    presented = presented_key(request)
    if not presented:
        raise HTTPException(status_code=401, detail=MISSING_KEY)
    if not matches_any(presented, admins):
        raise HTTPException(status_code=403, detail="Admin API key required for this operation.")


def openai_request_key(
    x_openai_api_key: Annotated[str | None, Header(alias="X-OpenAI-API-Key")] = None,
) -> str | None:
    """The caller's own OpenAI key, if sent: used for this request only, never stored."""
    key = x_openai_api_key.strip() if x_openai_api_key else ""
    if key and not (key.isascii() and key.isprintable()):
        raise BadInput("X-OpenAI-API-Key: an API key is printable ASCII; this one is not")
    return key or None


OpenAIKeyDep = Annotated[str | None, Depends(openai_request_key)]


def submission(
    key: OpenAIKeyDep,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
) -> Submission:
    """Who submits a job: the caller's OpenAI key (if any) and its Idempotency-Key."""
    return Submission(request_key=key, idempotency_key=idempotency_key)


SubmissionDep = Annotated[Submission, Depends(submission)]
