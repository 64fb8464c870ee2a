"""Suggest fields, refine fields, group tags: one structured call each, repaired server-side."""

from __future__ import annotations

import json
import re
from typing import Any

from pydantic import ValidationError

from crystallise.indexer import mock
from crystallise.indexer import schemas as s
from crystallise.llm.ask import HelperContext, ask_structured
from crystallise.prompts import indexer as prompts

_NON_WORD = re.compile(r"[^a-z0-9]+")


def snake_case(name: str) -> str:
    return _NON_WORD.sub("_", name.strip().lower()).strip("_")[:64] or "field"


def _json(context: dict[str, Any]) -> str:
    return json.dumps(context, ensure_ascii=False, indent=1)


def _context(pc: s.ProjectContext | None) -> dict[str, Any]:
    return pc.model_dump() if pc else {}


def _samples(records: list[dict[str, Any]]) -> list[dict[str, str]]:
    return [
        {
            "title": str(r.get("Title") or r.get("title") or "")[:300],
            "abstract": str(r.get("Abstract") or r.get("abstract") or "")[:1500],
        }
        for r in records[:5]
    ]


def _to_field(out: s.SuggestedFieldOutput) -> s.IndexerField | None:
    try:
        return s.IndexerField(
            name=snake_case(out.name),
            description=out.description,
            data_type_primary=out.data_type_primary,
            examples=out.examples[:10],
        )
    except ValidationError:
        return None


async def suggest_fields(
    ctx: HelperContext, req: s.SuggestFieldsRequest
) -> s.SuggestFieldsResponse:
    """Proposed fields (no duplicates of existing ones) and per-field risk warnings."""
    if req.mock:
        return mock.suggest_fields()
    out, _ = await ask_structured(
        ctx,
        "indexer",
        prompts.FIELD_SUGGESTION,
        s.SuggestFieldsOutput,
        req.model,
        context=_json(
            {
                "project_context": _context(req.project_context),
                "pico": req.pico or {},
                "sample_records": _samples(req.sample_records),
                "existing_fields": req.existing_fields,
            }
        ),
    )
    taken = {snake_case(n) for n in req.existing_fields}
    fields: list[dict[str, Any]] = []
    for suggestion in out.fields:
        candidate = _to_field(suggestion)
        if candidate is None or candidate.name in taken:
            continue
        taken.add(candidate.name)
        fields.append(
            candidate.model_dump(exclude_defaults=True)
            | {"data_type_primary": candidate.data_type_primary}
        )
    names = {f["name"] for f in fields}
    warnings = [
        s.ExtractionWarning(**w.model_dump() | {"field": snake_case(w.field)})
        for w in out.warnings
        if snake_case(w.field) in names
    ]
    return s.SuggestFieldsResponse(fields=fields, warnings=warnings)


async def refine_fields(ctx: HelperContext, req: s.RefineFieldsRequest) -> s.RefineFieldsResponse:
    """Suggestions that refer to real input fields; others are dropped with a warning."""
    if req.mock:
        return mock.refine_fields(req)
    out, _ = await ask_structured(
        ctx,
        "indexer",
        prompts.FIELD_REFINEMENT,
        s.RefineFieldsOutput,
        req.model,
        context=_json(
            {
                "project_context": _context(req.project_context),
                "fields": [f.model_dump() for f in req.fields],
                "sample_records": _samples(req.sample_records),
            }
        ),
    )
    names = {f.name for f in req.fields}
    suggestions: list[s.FieldSuggestion] = []
    warnings: list[str] = []
    for sug in out.suggestions:
        field = _to_field(sug.field)
        problem = None
        if field is None:
            problem = "invalid field definition"
        elif sug.action in ("modify", "remove", "merge") and sug.original_field_name not in names:
            problem = f"unknown original_field_name '{sug.original_field_name}'"
        elif sug.action == "merge" and (
            sug.target_field_name not in names or sug.target_field_name == sug.original_field_name
        ):
            problem = f"merge target '{sug.target_field_name}' is not another existing field"
        elif sug.action == "add" and field is not None and field.name in names:
            problem = f"'add' of existing field '{field.name}'"
        if problem:
            warnings.append(f"Dropped {sug.action} suggestion: {problem}.")
            continue
        assert field is not None
        suggestions.append(
            s.FieldSuggestion(
                action=sug.action,
                field=field,
                rationale=sug.rationale,
                original_field_name=sug.original_field_name if sug.action != "add" else None,
                target_field_name=sug.target_field_name if sug.action == "merge" else None,
            )
        )
    return s.RefineFieldsResponse(suggestions=suggestions, warnings=warnings)


def repair_groups(values: list[str], groups: list[s.TagGroupOutput]) -> list[s.TagGroup]:
    """Every input value in exactly one group: unknown values dropped, duplicates resolved to
    their first group, missing values collected in "Ungrouped", empty groups removed."""
    wanted = list(dict.fromkeys(values))
    remaining = set(wanted)
    out: list[s.TagGroup] = []
    for group in groups:
        members = [v for v in dict.fromkeys(group.values) if v in remaining]
        remaining -= set(members)
        if members:
            out.append(s.TagGroup(name=group.name, values=members, rationale=group.rationale))
    leftover = [v for v in wanted if v in remaining]
    if leftover:
        out.append(
            s.TagGroup(name="Ungrouped", values=leftover, rationale="Not placed by the model.")
        )
    return out


async def group_tags(ctx: HelperContext, req: s.GroupTagsRequest) -> s.GroupTagsResponse:
    if req.mock:
        return mock.group_tags(req)
    values = list(dict.fromkeys(req.values))
    out, usage = await ask_structured(
        ctx,
        "indexer",
        prompts.TAG_GROUPING,
        s.GroupTagsOutput,
        req.model,
        context=_json(
            {
                "field_name": req.field_name,
                "values": values,
                "project_context": _context(req.project_context),
                "number_of_groups_wanted": req.num_groups_hint or "your choice",
            }
        ),
    )
    return s.GroupTagsResponse(groups=repair_groups(values, out.groups), usage=usage)
