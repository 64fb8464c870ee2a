"""ASGI middleware: request ids, access logs, and the request-body size limit (413)."""

from __future__ import annotations

import json
import time
import uuid
from contextvars import ContextVar
from typing import Any

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from crystallise.common.logging import get_logger
from crystallise.config.model_capabilities import ModelReport, model_report

request_id_var: ContextVar[str] = ContextVar("request_id", default="-")
log = get_logger("crystallise.access")


class RequestContextMiddleware:
    """Assigns ``X-Request-ID`` (or keeps a sane caller-supplied one) and logs each request."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        supplied = dict(scope["headers"]).get(b"x-request-id", b"").decode("latin-1")
        rid = (
            supplied
            if supplied and len(supplied) <= 64 and supplied.isprintable()
            else uuid.uuid4().hex
        )
        token = request_id_var.set(rid)
        scope.setdefault("state", {})["request_id"] = rid  # for handlers outside this context
        report = ModelReport()
        report_token = model_report.set(report)
        structlog.contextvars.bind_contextvars(request_id=rid)
        start = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = list(message.get("headers", []))
                headers.append((b"x-request-id", rid.encode()))
                headers.extend(_model_headers(report))
                message["headers"] = headers
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            log.info(
                "request",
                method=scope["method"],
                path=scope["path"],
                status=status,
                duration_ms=round((time.perf_counter() - start) * 1000, 1),
            )
            structlog.contextvars.unbind_contextvars("request_id")
            request_id_var.reset(token)
            model_report.reset(report_token)


def _model_headers(report: ModelReport) -> list[tuple[bytes, bytes]]:
    """Which model(s) a sync AI call ran on, and any retired-model fallback, as headers."""
    headers: list[tuple[bytes, bytes]] = []
    if report.models:
        names = ", ".join(report.models)
        versions = ", ".join(v for v in report.models.values() if v)
        headers.append((b"x-crystallise-model", names.encode("latin-1", "replace")))
        if versions:
            headers.append((b"x-crystallise-model-version", versions.encode("latin-1", "replace")))
    for warning in report.warnings:
        headers.append((b"x-crystallise-warning", warning.encode("latin-1", "replace")))
    return headers


class BodySizeLimitMiddleware:
    """Rejects bodies over ``max_bytes`` with 413, by header or while streaming."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.max_bytes:
            await self._reject(send)
            return
        received = 0
        too_large = False

        async def limited_receive() -> Message:
            nonlocal received, too_large
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    too_large = True
                    raise _TooLarge()
            return message

        replaced = False

        async def checked_send(message: Message) -> None:
            # the framework may catch _TooLarge as a body error and answer 400: say 413
            nonlocal replaced
            if too_large:
                if not replaced:
                    replaced = True
                    await self._reject(send)
                return
            await send(message)

        try:
            await self.app(scope, limited_receive, checked_send)
        except _TooLarge:
            if not replaced:
                await self._reject(send)

    async def _reject(self, send: Send) -> None:
        body: Any = json.dumps(
            {
                "detail": f"Request body exceeds the limit of {self.max_bytes} bytes",
                "request_id": request_id_var.get(),
            }
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": body})


class _TooLarge(Exception):
    pass
