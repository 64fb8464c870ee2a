"""AutoIndexer extraction: one strict tool call per record, typed values, checked evidence."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from crystallise.common.quotes import verify_quotes
from crystallise.indexer.schema_builder import TOOL_NAME, YES_NO, build_extraction_tool
from crystallise.indexer.schemas import IndexerField, IndexerRequest, ProjectContext
from crystallise.jobs.engine.items import map_bounded
from crystallise.llm.ask import ModelPlan, ask
from crystallise.llm.client import LLMClient
from crystallise.llm.cost import UsageTally
from crystallise.llm.errors import ErrorCategory, LLMError
from crystallise.prompts import indexer as prompts
from crystallise.screening.schemas import has_text, plain_text

# An unverifiable quote halves the stated confidence (never presented as verified).
UNVERIFIED_CONFIDENCE_FACTOR = 0.5


@dataclass
class ExtractionContext:
    llm: LLMClient
    plan: ModelPlan
    fields: list[IndexerField]
    project_context: ProjectContext | None = None
    request_key: str | None = None
    system_prompt: str | None = None  # admin override of the extraction rules (config API)
    tally: UsageTally = field(default_factory=UsageTally)
    model_version: str | None = None

    @property
    def model(self) -> str:
        return self.plan.model

    def __post_init__(self) -> None:
        self.tool = build_extraction_tool(self.fields)
        self.system = self.system_prompt or prompts.EXTRACTION.system or ""
        pc = self.project_context
        self.context_block = ""
        if pc and (pc.description or pc.research_questions):
            questions = "\n".join(f"- {q}" for q in pc.research_questions)
            self.context_block = (
                f"Project context (data):\n{pc.description}\n{questions}\n\n".replace(
                    "\n\n\n", "\n\n"
                )
            )


def record_text(record: dict[str, Any]) -> tuple[str, str]:
    title = plain_text(record.get("Title") or record.get("title"))
    abstract = plain_text(record.get("Abstract") or record.get("abstract"))
    return title, abstract


def _number(value: Any) -> int | float | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        return int(value) if float(value).is_integer() else float(value)
    try:
        parsed = float(str(value).replace(",", "").strip())
    except ValueError:
        return None
    return int(parsed) if parsed.is_integer() else parsed


def coerce_value(field: IndexerField, value: Any) -> Any:
    """Parse the model's value to the declared type (None when it cannot be)."""
    kind = field.data_type_primary
    if kind == "number":
        return _number(value)
    if kind == "yes_no":
        text = str(value).strip().lower() if value is not None else "not_reported"
        return text if text in YES_NO else "not_reported"
    if kind == "list_number":
        items = value if isinstance(value, list) else [value]
        return [n for n in (_number(v) for v in items) if n is not None]
    if kind == "list_text":
        items = value if isinstance(value, list) else ([] if value is None else [value])
        out = [str(v).strip() for v in items if str(v).strip()]
        if field.examples_mode == "enum":
            out = [v for v in out if v in field.examples]
        return list(dict.fromkeys(out))
    if value is None:
        return None
    text = str(value).strip()
    if field.examples_mode == "enum" and text not in field.examples:
        return None
    return text or None


def shape_field(field: IndexerField, raw: Any, title: str, abstract: str) -> dict[str, Any]:
    raw = raw if isinstance(raw, dict) else {}
    evidence = [str(q) for q in raw.get("evidence") or [] if str(q).strip()]
    verified, missing = verify_quotes(evidence, title, abstract)
    try:
        confidence = min(max(float(raw.get("confidence", 0.0)), 0.0), 1.0)
    except (TypeError, ValueError):
        confidence = 0.0
    if verified is False:
        confidence = round(confidence * UNVERIFIED_CONFIDENCE_FACTOR, 3)
    return {
        "value": coerce_value(field, raw.get("value")),
        "confidence": confidence,
        "evidence": evidence,
        "evidence_verified": verified,
        "unverified_evidence": missing,
        "reasoning": str(raw.get("reasoning") or ""),
    }


async def process_record(ctx: ExtractionContext, record: dict[str, Any]) -> dict[str, Any]:
    """Extract every field of one record; an ``LLMError`` becomes ``indexing_status: error``."""
    rid = str(record.get("ID")).strip()
    title, abstract = record_text(record)
    messages = [
        {"role": "system", "content": ctx.system},
        {
            "role": "user",
            "content": prompts.EXTRACTION.render_user(
                project_context=ctx.context_block,
                title=title or "[No title]",
                abstract=abstract if has_text(abstract) else "[No abstract]",
            ),
        },
    ]
    try:
        result = await ask(
            ctx.llm,
            ctx.plan,
            messages,
            tools=[ctx.tool],
            tool_choice={"type": "function", "function": {"name": TOOL_NAME}},
            request_key=ctx.request_key,
        )
        ctx.tally.add(ctx.model, result.usage)
        ctx.model_version = ctx.model_version or result.model_version
        arguments = result.tool_arguments
        if arguments is None:
            raise LLMError("Model did not call the extraction function", ErrorCategory.TRANSIENT)
    except LLMError as exc:
        if exc.stops_job:  # bad key, refused model, exhausted quota: no record can succeed
            raise
        return {
            "ID": rid,
            "indexing_status": "error",
            "error": exc.message,
            "error_category": exc.category.value,
        }
    out: dict[str, Any] = {"ID": rid, "indexing_status": "ok"}
    for fld in ctx.fields:
        out[fld.name] = shape_field(fld, arguments.get(fld.name), title, abstract)
    return out


async def extract_all(
    ctx: ExtractionContext, records: list[dict[str, Any]], *, max_workers: int, batch_size: int
) -> list[dict[str, Any]]:
    """The synchronous run's loop: every record through ``process_record``, read
    ``batch_size`` at a time with at most ``max_workers`` in flight (``map_bounded``, the
    jobs' machinery); a job-wide error stops the rest and is raised."""
    results: list[dict[str, Any]] = [{} for _ in records]

    async def pages() -> AsyncIterator[list[int]]:
        for start in range(0, len(records), batch_size):
            yield list(range(start, min(start + batch_size, len(records))))

    async def one(index: int) -> None:
        results[index] = await process_record(ctx, records[index])

    error = await map_bounded(pages(), one, window=max_workers)
    if error is not None:
        raise error
    return results


USAGE_KEYS = ("input_tokens", "output_tokens", "total_tokens", "estimated_cost_usd")


async def run_records(
    llm: LLMClient,
    plan: ModelPlan,
    body: IndexerRequest,
    request_key: str | None,
    system_prompt: str | None,
) -> tuple[list[dict[str, Any]], dict[str, Any], str | None]:
    """A synchronous run: every selected record's result, the usage and the model version
    (``system_prompt``: the admin's override of the extraction rules, if any)."""
    ctx = ExtractionContext(
        llm, plan, body.fields, body.project_context, request_key, system_prompt=system_prompt
    )
    results = await extract_all(
        ctx, body.selected_records(), max_workers=body.max_workers, batch_size=body.batch_size
    )
    summary = ctx.tally.summary()
    return results, {k: summary[k] for k in USAGE_KEYS}, ctx.model_version


def errors_of(results: list[dict[str, Any]]) -> list[str]:
    return [
        f"Record {r.get('ID')}: {r.get('error')}"
        for r in results
        if r.get("indexing_status") == "error"
    ]
