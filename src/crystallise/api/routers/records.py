"""Records endpoints: read a file of references into normalised records (import)."""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError

from crystallise.api.guard import accepts_uploads
from crystallise.errors import BadInput
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
    return await run_in_threadpool(lambda: parse_records(**args))
