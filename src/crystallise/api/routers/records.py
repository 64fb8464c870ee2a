"""Records endpoints: read a file of references into normalised records (import)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError

from crystallise.api.guard import accepts_uploads
from crystallise.errors import BadInput, ClientGone
from crystallise.records.limits import ParseBudget, ParseCancelled
from crystallise.records.parse import parse_records
from crystallise.records.schemas import FORMATS, ParseResult, ParseTextRequest

router = APIRouter(prefix="/records", tags=["records"])


async def _upload(request: Request) -> dict[str, Any]:
    """The parse arguments from a multipart form (``file`` plus optional fields), a JSON body
    (``ParseTextRequest``) or any other body taken as the file itself."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    query = request.query_params
    if kind == "multipart/form-data":
        form = await request.form()
        upload = form.get("file")
        if upload is None or isinstance(upload, str):
            raise BadInput("file: upload the references file in the form field 'file'")
        fields = {k: form.get(k) or query.get(k) for k in ("format", "encoding", "mapping")}
        for name, value in fields.items():
            if value is not None and not isinstance(value, str):
                raise BadInput(f"{name}: send it as a text field of the form, not as a file")
        data: bytes | str = await upload.read()
        fields["filename"] = upload.filename
    elif kind == "application/json":
        try:
            body = ParseTextRequest.model_validate_json(await request.body())
        except ValidationError as exc:
            raise RequestValidationError(exc.errors(include_url=False), body=None) from None
        data, fields = body.text, body.model_dump(exclude={"text"})
    else:
        data = await request.body()
        fields = {k: query.get(k) for k in ("format", "encoding", "mapping", "filename")}
    if not data:
        raise BadInput("file: the body is empty")
    return {"data": data, **_checked(fields)}


def _checked(fields: dict[str, Any]) -> dict[str, Any]:
    if fields.get("format") and fields["format"] not in FORMATS:
        raise BadInput(f"format: {fields['format']!r} is not one of {', '.join(FORMATS)}")
    mapping = fields.get("mapping")
    if isinstance(mapping, str) and mapping:
        try:
            mapping = json.loads(mapping)
        except json.JSONDecodeError:
            raise BadInput(
                'mapping: must be a JSON object such as {"title": "Article Title"}'
            ) from None
    if mapping is not None and not (
        isinstance(mapping, dict) and all(isinstance(v, str) for v in mapping.values())
    ):
        raise BadInput("mapping: must map field names to column names (strings)")
    return {**fields, "format": fields.get("format") or None, "mapping": mapping or None}


_PARSE_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {
                        "file": {"type": "string", "format": "binary"},
                        "format": {"type": "string", "enum": list(FORMATS)},
                        "encoding": {"type": "string"},
                        "mapping": {"type": "string", "description": "JSON object"},
                    },
                }
            },
            "application/json": {"schema": ParseTextRequest.model_json_schema()},
            "text/plain": {"schema": {"type": "string"}},
        },
    }
}


@router.post("/parse", response_model=ParseResult, openapi_extra=_PARSE_BODY)
@accepts_uploads
async def parse(request: Request) -> ParseResult:
    """Read RIS, nbib, PubMed XML, BibTeX, EndNote XML, CSV, TSV or XLSX (format detected or
    given) into normalised records, a dedup log and warnings with record and line numbers."""
    args = await _upload(request)
    budget = ParseBudget(request.app.state.services.settings.parse_time_budget_s)
    return await _abandoned_if_gone(request, budget, lambda: parse_records(**args, budget=budget))


async def _abandoned_if_gone(
    request: Request, budget: ParseBudget, work: Callable[[], ParseResult]
) -> ParseResult:
    """Run the parse in a worker thread; if the client disconnects meanwhile, tell the parse
    to stop (it checks between records) instead of finishing work nobody will read."""
    task = asyncio.ensure_future(run_in_threadpool(work))
    while not task.done():
        await asyncio.wait({task}, timeout=0.5)
        if not task.done() and await request.is_disconnected():
            budget.cancelled.set()
    try:
        return task.result()
    except ParseCancelled:
        raise ClientGone("the client disconnected; the parse was abandoned") from None
