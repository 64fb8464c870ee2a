"""Translate ``IndexerField[]`` into a strict function tool (PROMPTING §2 key order)."""

from __future__ import annotations

from typing import Any

from crystallise.indexer.schemas import IndexerField

TOOL_NAME = "record_extraction"
YES_NO = ["yes", "no", "not_reported"]


def _value_schema(field: IndexerField) -> dict[str, Any]:
    enum = field.examples if field.examples_mode == "enum" else None
    kind = field.data_type_primary
    if kind == "number":
        return {"type": ["number", "null"]}
    if kind == "yes_no":
        return {"type": "string", "enum": YES_NO}
    if kind == "list_number":
        return {"type": "array", "items": {"type": "number"}}
    if kind == "list_text":
        items: dict[str, Any] = {"type": "string"}
        if enum:
            items["enum"] = list(enum)
        return {"type": "array", "items": items}
    schema: dict[str, Any] = {"type": ["string", "null"]}
    if enum:
        schema["enum"] = [*enum, None]
    return schema


def field_instructions(field: IndexerField) -> str:
    """The field's operational definition, carried inside the tool schema."""
    parts = [field.description.strip() or f"The {field.name} of the study."]
    kind = field.data_type_primary
    if kind == "number":
        parts.append("A single number; null when not reported.")
    elif kind == "yes_no":
        parts.append("yes, no, or not_reported when the record does not say.")
    elif kind.startswith("list_"):
        parts.append("Every distinct mention, as a list; empty when not reported.")
    else:
        parts.append("Null when not reported; never guess.")
    if field.data_type_secondary and field.data_type_secondary != "NA":
        parts.append(f"Sub-type/unit: {field.data_type_secondary}.")
    if field.examples and field.examples_mode == "guide":
        parts.append("Examples of values: " + "; ".join(field.examples[:10]) + ".")
    if field.examples_mode == "enum":
        parts.append("Use only the allowed values.")
    parts.append(
        "Be exhaustive and precise." if field.depth == "full" else "Keep the value concise."
    )
    return " ".join(parts)


def build_extraction_tool(fields: list[IndexerField]) -> dict[str, Any]:
    """A strict tool: per field ``evidence`` → ``value`` → ``reasoning`` → ``confidence``."""
    properties: dict[str, Any] = {}
    for field in fields:
        properties[field.name] = {
            "type": "object",
            "description": field_instructions(field),
            "properties": {
                "evidence": {
                    "type": "array",
                    "items": {"type": "string"},
                    "description": "Verbatim quotes from the title or abstract supporting the "
                    "value (copy exactly); empty if not reported.",
                },
                "value": _value_schema(field),
                "reasoning": {"type": "string", "description": "One sentence."},
                "confidence": {"type": "number", "description": "0 to 1."},
            },
            "required": ["evidence", "value", "reasoning", "confidence"],
            "additionalProperties": False,
        }
    return {
        "type": "function",
        "function": {
            "name": TOOL_NAME,
            "description": "Record the values extracted from one study record.",
            "strict": True,
            "parameters": {
                "type": "object",
                "properties": properties,
                "required": [f.name for f in fields],
                "additionalProperties": False,
            },
        },
    }
