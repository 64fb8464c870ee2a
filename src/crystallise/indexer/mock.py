"""Mock AutoIndexer: deterministic values quoted from each record, no model call."""

from __future__ import annotations

import re
from typing import Any

from crystallise.indexer import schemas as s
from crystallise.indexer.pipeline import record_text, shape_field

_NUMBER = re.compile(r"\b\d[\d,]*(?:\.\d+)?\b")
_SENTENCE = re.compile(r"[^.;]+")


def _raw_value(field: s.IndexerField, title: str, abstract: str) -> dict[str, Any]:
    text = f"{title}. {abstract}"
    kind = field.data_type_primary
    if kind in ("number", "list_number"):
        match = _NUMBER.search(abstract) or _NUMBER.search(title)
        if not match:
            return {"evidence": [], "value": None if kind == "number" else [], "confidence": 0.2}
        number = match.group(0).replace(",", "")
        return {
            "evidence": [match.group(0)],
            "value": number if kind == "number" else [number],
            "confidence": 0.6,
        }
    if kind == "yes_no":
        return {"evidence": [], "value": "not_reported", "confidence": 0.3}
    if field.examples_mode == "enum":
        hit = next((e for e in field.examples if e.lower() in text.lower()), None)
        value: Any = hit if kind == "text" else ([hit] if hit else [])
        return {"evidence": [], "value": value, "confidence": 0.5 if hit else 0.2}
    first = _SENTENCE.search(title or abstract) or _SENTENCE.search("n/a")
    quote = first.group(0).strip() if first else ""
    return {
        "evidence": [quote] if quote else [],
        "value": quote if kind == "text" else [quote],
        "confidence": 0.5,
    }


def mock_record(fields: list[s.IndexerField], record: dict[str, Any]) -> dict[str, Any]:
    title, abstract = record_text(record)
    out: dict[str, Any] = {"ID": str(record.get("ID")).strip(), "indexing_status": "ok"}
    for field in fields:
        raw = _raw_value(field, title, abstract) | {
            "reasoning": "Mock mode: deterministic placeholder."
        }
        out[field.name] = shape_field(field, raw, title, abstract)
    return out


def run_records(
    body: s.IndexerRequest,
) -> tuple[list[dict[str, Any]], dict[str, Any], str | None]:
    """A mock synchronous run: results, zero usage and the ``mock`` model version."""
    results = [mock_record(body.fields, r) for r in body.selected_records()]
    usage = {"input_tokens": 0, "output_tokens": 0, "total_tokens": 0, "estimated_cost_usd": 0.0}
    return results, usage, "mock"


def suggest_fields() -> s.SuggestFieldsResponse:
    return s.SuggestFieldsResponse(
        fields=[
            {
                "name": "study_design",
                "description": "Type of study",
                "data_type_primary": "text",
                "examples": ["RCT", "cohort"],
            },
            {
                "name": "sample_size",
                "description": "Number of participants",
                "data_type_primary": "number",
            },
        ],
        warnings=[],
    )


def refine_fields(req: s.RefineFieldsRequest) -> s.RefineFieldsResponse:
    first = req.fields[0]
    revised = first.model_copy(
        update={
            "description": (first.description or first.name) + " (Mock mode: clarified definition)"
        }
    )
    return s.RefineFieldsResponse(
        suggestions=[
            s.FieldSuggestion(
                action="modify",
                field=revised,
                original_field_name=first.name,
                rationale="Mock mode: placeholder refinement. Run without mock for real review.",
            )
        ]
    )


def group_tags(req: s.GroupTagsRequest) -> s.GroupTagsResponse:
    groups: dict[str, list[str]] = {}
    for value in dict.fromkeys(req.values):
        key = re.sub(r"[^a-z0-9]", "", value.lower())[:1] or "#"
        groups.setdefault(key, []).append(value)
    return s.GroupTagsResponse(
        groups=[
            s.TagGroup(
                name=f"Group {k.upper()}",
                values=v,
                rationale="Mock mode: grouped by first character.",
            )
            for k, v in groups.items()
        ],
        usage={"input_tokens": 0, "output_tokens": 0, "total_tokens": 0, "estimated_cost_usd": 0.0},
    )
