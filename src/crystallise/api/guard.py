"""Input guard for every JSON body, before validation: 415 for a body that is not JSON,
400 naming the field for values no column or model can take (NaN/Infinity, lone UTF-16
surrogates, NUL characters, integers beyond 64 bits). Nothing is normalised silently."""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import Callable
from typing import Any, TypeVar

from fastapi import HTTPException, Request

from crystallise.llm.client import call_deadline

INT64_MAX = 2**63 - 1
MAX_JSON_DEPTH = 64  # no request of the contract nests deeper than about 6
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


class _NonFinite(ValueError):
    pass


def _reject_constant(name: str) -> Any:
    raise _NonFinite(name)


def _path(parts: list[str | int]) -> str:
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "body"


def find_bad_value(value: Any, parts: list[str | int] | None = None) -> str | None:
    """The first value that cannot be stored or sent as is, as ``"problem: field"``."""
    parts = parts or []
    if len(parts) > MAX_JSON_DEPTH:
        return f"JSON nested deeper than {MAX_JSON_DEPTH} levels: {_path(parts[:8])}..."
    if isinstance(value, str):
        if "\x00" in value:
            return f"NUL characters are not allowed: {_path(parts)}"
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return f"Invalid Unicode (lone surrogate) in text: {_path(parts)}"
        return None
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return None if abs(value) <= INT64_MAX else f"Integer out of range: {_path(parts)}"
    if isinstance(value, float):
        return None if math.isfinite(value) else f"Number must be finite: {_path(parts)}"
    if isinstance(value, dict):
        for key, item in value.items():
            problem = find_bad_value(key, [*parts, "<key>"]) or find_bad_value(item, [*parts, key])
            if problem:
                return problem
    elif isinstance(value, list):
        for index, item in enumerate(value):
            problem = find_bad_value(item, [*parts, index])
            if problem:
                return problem
    return None


def _is_json(content_type: str) -> bool:
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or media.endswith("+json")


F = TypeVar("F", bound=Callable[..., Any])


def accepts_uploads(endpoint: F) -> F:
    """Mark a route that also takes file uploads and raw text (the JSON guard lets them by)."""
    endpoint.accepts_uploads = True  # type: ignore[attr-defined]
    return endpoint


async def guard_json_body(request: Request) -> None:
    """Router dependency: reject what the JSON parser accepts but the service cannot take."""
    if request.method not in BODY_METHODS:
        return
    content_type = request.headers.get("content-type", "")
    route = request.scope.get("route")
    if not _is_json(content_type) and getattr(
        getattr(route, "endpoint", None), "accepts_uploads", False
    ):
        return  # a file upload: the route reads and checks its own body
    body = await request.body()
    if not body:
        return
    if not _is_json(content_type):
        raise HTTPException(
            status_code=415,
            detail=f"Content-Type must be application/json (got '{content_type or 'none'}')",
        )
    try:
        data = json.loads(body, parse_constant=_reject_constant)
    except _NonFinite as exc:
        raise HTTPException(
            status_code=400, detail=f"{exc} is not a valid JSON number (numbers must be finite)"
        ) from None
    except RecursionError:
        raise HTTPException(
            status_code=400, detail=f"JSON nested deeper than {MAX_JSON_DEPTH} levels: body"
        ) from None
    except ValueError:
        return  # not JSON at all: the validator reports it with its position
    problem = find_bad_value(data)
    if problem:
        raise HTTPException(status_code=400, detail=problem)


async def bound_sync_calls(request: Request) -> None:
    """Router dependency: every model call this request makes must finish within
    CRYSTALLISE_SYNC_TIMEOUT_S in total (jobs run in their own context, unbounded)."""
    budget = float(request.app.state.services.settings.sync_timeout_s)
    call_deadline.set((asyncio.get_running_loop().time() + budget, budget))
