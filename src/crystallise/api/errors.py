"""Exception handlers: the reference's error contract (400 validation, taxonomy, safe 500)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

from crystallise.api.middleware import request_id_var
from crystallise.common.logging import get_logger
from crystallise.errors import CrystalliseError
from crystallise.llm.errors import LLMError

log = get_logger(__name__)


def _location(loc: tuple[Any, ...]) -> str:
    parts = [p for p in loc if p not in ("body", "query", "path", "header")]
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "body"


def _message(error: dict[str, Any]) -> str:
    msg = str(error.get("msg", "Invalid value"))
    return msg.removeprefix("Value error, ")


def validation_detail(errors: list[dict[str, Any]]) -> str:
    """``"Field required: research_question"`` — problem and field, for every error."""
    return "; ".join(f"{_message(e)}: {_location(tuple(e.get('loc', ())))}" for e in errors[:20])


async def _on_validation(request: Request, exc: RequestValidationError) -> JSONResponse:
    errors = [
        {"type": e.get("type"), "loc": list(e.get("loc", ())), "msg": _message(e)}
        for e in exc.errors()
    ]
    return _error(request, 400, {"detail": validation_detail(errors), "errors": errors})


def _error(
    request: Request, status: int, content: dict[str, Any], headers: Mapping[str, str] | None = None
) -> JSONResponse:
    """Every error body carries the request id, as the X-Request-ID header does."""
    return JSONResponse(
        status_code=status,
        content={**content, "request_id": _request_id(request)},
        headers=headers,
    )


async def _on_llm_error(request: Request, exc: LLMError) -> JSONResponse:
    log.warning("llm_error", category=exc.category.value, message=exc.message)
    return _error(request, exc.http_status, {"detail": exc.to_detail()})


async def _on_domain_error(request: Request, exc: CrystalliseError) -> JSONResponse:
    return _error(request, exc.status_code, {"detail": exc.message})


async def _on_http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    return _error(request, exc.status_code, {"detail": exc.detail}, exc.headers)


def _request_id(request: Request) -> str:
    """The id the middleware gave this request (it is in scope even where the context var,
    reset when the middleware returned, is not)."""
    rid = getattr(request.state, "request_id", None) or request_id_var.get()
    return str(rid)


async def _on_database_error(request: Request, exc: DBAPIError) -> JSONResponse:
    """Database down, restarting, busy or out of disk: a clear, retryable 503."""
    rid = _request_id(request)
    full = "full" in str(exc.orig).lower()
    log.error("database_unavailable", request_id=rid, error=type(exc.orig).__name__, disk_full=full)
    reason = "out of disk space" if full else "unavailable"
    return JSONResponse(
        status_code=503,
        content={"detail": f"Database {reason}; retry later.", "request_id": rid},
        headers={"x-request-id": rid, "retry-after": "5"},
    )


async def _on_unexpected(request: Request, exc: Exception) -> JSONResponse:
    if isinstance(exc, OperationalError):
        return await _on_database_error(request, exc)
    rid = _request_id(request)
    log.error("unhandled_exception", request_id=rid, error_type=type(exc).__name__, exc_info=exc)
    return JSONResponse(
        status_code=500,
        content={"detail": "Internal server error", "request_id": rid},
        headers={"x-request-id": rid},
    )


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, _on_validation)  # type: ignore[arg-type]
    app.add_exception_handler(LLMError, _on_llm_error)  # type: ignore[arg-type]
    app.add_exception_handler(CrystalliseError, _on_domain_error)  # type: ignore[arg-type]
    app.add_exception_handler(StarletteHTTPException, _on_http_error)  # type: ignore[arg-type]
    app.add_exception_handler(OperationalError, _on_database_error)  # type: ignore[arg-type]
    app.add_exception_handler(Exception, _on_unexpected)
