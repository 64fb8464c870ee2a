"""Export: a job's records with their results as RIS, CSV, JSON Lines or XLSX, streamed.

Rows are built one item at a time from an iterator over the job's items, so a 20,000-record
export never holds the job in memory (XLSX is written row by row to a temporary file by
openpyxl's write-only mode, then streamed).

Where the decisions go in RIS: an ``N1`` note (``Crystallise: include …`` with the score,
per-repetition scores, reasoning, cluster and flags) and ``KW`` keywords
(``crystallise:include`` / ``crystallise:exclude``, ``crystallise-cluster:<label>``,
``crystallise-flag:<flag>``). Zotero and EndNote keep both on import; screening tools that
read RIS import them as notes and keywords. Every field of a record imported from RIS is
written back as it was read, the two additions after it.

Safe to open (OWASP "CSV injection"): a CSV cell whose text begins with ``=``, ``+``, ``-``,
``@``, a tab or a carriage return is written with a leading ``'`` (Excel and LibreOffice then
show it as text; the quote is visible on re-import); in XLSX every text cell is written with
the string type, never as a formula, and such cells also carry Excel's "quote prefix" style, so
editing one in Excel keeps it text. In RIS every line break inside a value (``\n``, ``\r``
and the other characters ``str.splitlines`` breaks at) is folded into one space, so no value
can start a line that reads as a tag and a file re-imports as exactly the records exported.
"""

from __future__ import annotations

import csv
import functools
import io
import json
import re
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

from crystallise.common.types import JOB_THRESHOLD
from crystallise.db.jobs import ItemRow
from crystallise.indexer.schemas import IndexedRecord
from crystallise.screening.assessment import exclusion_reason
from crystallise.screening.schemas import ScreeningResult

ExportFormat = Literal["ris", "csv", "jsonl", "xlsx"]
MEDIA_TYPES: dict[str, str] = {
    "ris": "application/x-research-info-systems",
    "csv": "text/csv; charset=utf-8",
    "jsonl": "application/x-ndjson",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_LINE_BREAKS = re.compile("\r\n|[\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029]")
_BIBLIO = ("title", "abstract", "authors", "year", "journal", "doi", "pmid", "keywords")


@dataclass
class ExportPlan:
    """What one export writes: the job kind, the columns of its results, the decision rule."""

    kind: Literal["screening", "indexer"]
    threshold: float = JOB_THRESHOLD
    repetitions: int = 0
    fields: list[str] = field(default_factory=list)  # indexer: extracted field names
    clusters: dict[int, str] = field(default_factory=dict)
    criteria: list[str] = field(default_factory=list)  # screening: criterion ids, job order

    def columns(self) -> list[str]:
        if self.kind == "indexer":
            extracted = [f"{n}{s}" for n in self.fields for s in ("", "_confidence", "_evidence")]
            return ["record_id", "title", "indexing_status", *extracted, "error"]
        scores = [f"score_{i}" for i in range(1, self.repetitions + 1)]
        verdicts = [f"{c}{s}" for c in self.criteria for s in ("_verdict", "_quote")]
        return ["record_id", *_BIBLIO, "decision", "included", "exclusion_reason", "final_score",
                *scores, "reasoning", *verdicts, "cluster", "flags", "duplicate_of_id",
                "error"]  # fmt: skip


def _joined(value: Any) -> str:
    if isinstance(value, list):
        return "; ".join(str(v) for v in value)
    return "" if value is None else str(value)


def screening_row(item: ItemRow, plan: ExportPlan) -> dict[str, Any]:
    """One screened record: its bibliographic fields, scores and the decision at the threshold."""
    paper, result = item.input, ScreeningResult.of(item)
    final = result.final_score
    if result.failed:
        decision = "error"
    elif final is None:
        decision = "pending"
    else:
        decision = "include" if final >= plan.threshold else "exclude"
    cluster_ids = result.cluster_ids or []
    row: dict[str, Any] = {"record_id": paper.get("id", item.item_id)}
    row.update({name: paper.get(name) for name in _BIBLIO})
    for assessed in result.criteria_assessment or []:
        row[f"{assessed.id}_verdict"] = assessed.verdict
        row[f"{assessed.id}_quote"] = assessed.quote
    row.update(
        decision=decision,
        included={"include": 1, "exclude": 0}.get(decision),
        exclusion_reason=exclusion_reason(result, plan.threshold)
        if decision == "exclude"
        else None,
        final_score=final,
        scores=result.scores or [],
        reasoning=result.reasoning,
        cluster=plan.clusters.get(cluster_ids[0]) if cluster_ids else None,
        flags=result.flags or [],
        duplicate_of_id=paper.get("duplicate_of"),
        error=result.error,
    )
    return row


def indexer_row(item: ItemRow, plan: ExportPlan) -> dict[str, Any]:
    """One indexed record: each extracted field's value, confidence and evidence."""
    record, result = item.input, item.result_as(IndexedRecord)
    row: dict[str, Any] = {
        "record_id": record.get("ID", item.item_id),
        "title": record.get("Title") or record.get("title"),
        "indexing_status": (result.indexing_status if result else None)
        or ("pending" if not item.result else None),
        "error": result.error if result else None,
    }
    for name in plan.fields:
        value = result.extracted(name) if result else None
        row[name] = value.get("value") if isinstance(value, dict) else value
        row[f"{name}_confidence"] = value.get("confidence") if isinstance(value, dict) else None
        evidence = value.get("evidence") if isinstance(value, dict) else None
        row[f"{name}_evidence"] = evidence or []
    return row


def _flat(row: dict[str, Any], columns: list[str]) -> list[Any]:
    """A row as spreadsheet cells in ``columns`` order."""
    cells = dict(row)
    for i, score in enumerate(row.get("scores") or [], 1):
        cells[f"score_{i}"] = score
    for key, value in row.items():
        if key.endswith("_evidence") and isinstance(value, list):
            cells[key] = " | ".join(
                str(e.get("quote", e)) if isinstance(e, dict) else str(e) for e in value
            )
    return [_joined(cells.get(c)) if isinstance(cells.get(c), list) else cells.get(c)
            for c in columns]  # fmt: skip


def stream(
    items: Iterable[ItemRow],
    plan: ExportPlan,
    fmt: ExportFormat,
    summary: ExportSummary | None = None,
) -> Iterator[bytes]:
    """The export as byte chunks, one record at a time; each row is also counted into
    ``summary`` when one is given (the CLI's table, without a second pass)."""
    if fmt == "ris":
        pairs = _paired(items, plan, summary)
        return (ris_record(item, row, plan).encode() for item, row in pairs)
    rows = (row for _, row in _paired(items, plan, summary))
    if fmt == "jsonl":
        return (json.dumps(r, ensure_ascii=False).encode() + b"\n" for r in rows)
    if fmt == "csv":
        return _csv(rows, plan.columns())
    return _xlsx(rows, plan.columns())


def _paired(
    items: Iterable[ItemRow], plan: ExportPlan, summary: ExportSummary | None
) -> Iterator[tuple[ItemRow, dict[str, Any]]]:
    to_row = indexer_row if plan.kind == "indexer" else screening_row
    for item in items:
        row = to_row(item, plan)
        if summary is not None:
            summary.add(row)
        yield item, row


def _csv(rows: Iterator[dict[str, Any]], columns: list[str]) -> Iterator[bytes]:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(columns)
    yield ("\ufeff" + buffer.getvalue()).encode()  # the BOM lets Excel read UTF-8
    for row in rows:
        buffer.seek(0)
        buffer.truncate()
        writer.writerow([csv_safe(c) for c in _flat(row, columns)])
        yield buffer.getvalue().encode()


def csv_safe(value: Any) -> Any:
    """A CSV cell that no spreadsheet runs: text that would start a formula gets a ``'``."""
    if value is None:
        return ""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def _xlsx_cell(sheet: Any, value: Any) -> Any:
    """A cell value for a write-only sheet: text is always text (openpyxl would make a
    formula of a string that starts with ``=``), with the quote prefix where it looks like one."""
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

    if not isinstance(value, str):
        return value
    value = ILLEGAL_CHARACTERS_RE.sub("", value)
    if not value.startswith(_FORMULA_START):
        return value
    cell = WriteOnlyCell(sheet, value)
    cell.data_type = "s"
    cell.quotePrefix = True
    return cell


def xlsx_rows(sheet: Any, rows: Iterable[list[Any]]) -> None:
    """Append ``rows`` to a write-only sheet with every text cell kept as text."""
    for cells in rows:
        sheet.append([_xlsx_cell(sheet, c) for c in cells])


def _xlsx(rows: Iterator[dict[str, Any]], columns: list[str]) -> Iterator[bytes]:
    from openpyxl import Workbook

    book = Workbook(write_only=True)
    sheet = book.create_sheet("results")
    sheet.append(columns)
    xlsx_rows(sheet, (_flat(row, columns) for row in rows))
    with tempfile.TemporaryFile() as spool:
        book.save(spool)
        spool.seek(0)
        while chunk := spool.read(1 << 16):
            yield chunk


# ---- RIS ---------------------------------------------------------------------------------------
@functools.cache
def _ris_writer() -> Any:
    import rispy

    class HeaderlessRisWriter(rispy.RisWriter):  # type: ignore[misc]
        def set_header(self, count: int) -> None:
            return None

    return HeaderlessRisWriter


def _ris_note(row: dict[str, Any], plan: ExportPlan) -> tuple[str, list[str]]:
    """The N1 note and the KW keywords that carry a record's result."""
    if plan.kind == "indexer":
        parts = [
            f"{n}: {row.get(n)} (confidence {row.get(f'{n}_confidence')})" for n in plan.fields
        ]
        return "Crystallise indexing: " + "; ".join(parts), []
    score = row["final_score"]
    note = f"Crystallise: {row['decision']}"
    if score is not None:
        note += f" (final score {score:g}, threshold {plan.threshold:g}, scores {row['scores']})"
    reasons = (("Exclusion reason", "exclusion_reason"), ("Reasoning", "reasoning"),
               ("Cluster", "cluster"), ("Error", "error"))  # fmt: skip
    for label, key in reasons:
        if row.get(key):
            note += f". {label}: {str(row[key]).rstrip('. ')}"
    if row["flags"]:
        note += f". Flags: {', '.join(row['flags'])}"
    keywords = [f"crystallise:{row['decision']}"]
    keywords += (
        [f"crystallise-reason:{row['exclusion_reason']}"] if row.get("exclusion_reason") else []
    )
    keywords += [f"crystallise-cluster:{row['cluster']}"] if row.get("cluster") else []
    keywords += [f"crystallise-flag:{f}" for f in row["flags"]]
    if row.get("duplicate_of_id"):
        note += f". Possible duplicate of {row['duplicate_of_id']}"
        keywords.append("crystallise:duplicate")
    return note, keywords


def ris_record(item: ItemRow, row: dict[str, Any], plan: ExportPlan) -> str:
    """One RIS record: the imported record's own fields unchanged (when it came from RIS),
    else one built from the normalised fields; then the result as N1 and KW."""
    import rispy

    note, keywords = _ris_note(row, plan)
    source = item.input.get("source")
    base: dict[str, Any]
    if isinstance(source, dict) and "type_of_reference" in source:
        base = json.loads(json.dumps(source))  # a copy: the stored input stays as it was
    else:
        base = _ris_from_fields(item.input if plan.kind == "screening" else {"title": row["title"]})
    base["notes"] = [*list(base.get("notes") or []), note]
    base["keywords"] = [*list(base.get("keywords") or []), *keywords]
    base.setdefault("id", row["record_id"])
    try:
        return str(rispy.dumps([_folded(base)], implementation=_ris_writer())) + "\n"
    except (TypeError, AttributeError, ValueError):  # a malformed stored source: rebuild it
        fallback = _ris_from_fields(item.input) | {"notes": [note], "keywords": keywords}
        return str(rispy.dumps([_folded(fallback)], implementation=_ris_writer())) + "\n"


def _folded(value: Any) -> Any:
    """``value`` with every line break inside its strings folded into one space (RIS is one
    field per line: a break would let the rest of a title start a forged tag)."""
    if isinstance(value, str):
        return _LINE_BREAKS.sub(" ", value)
    if isinstance(value, list):
        return [_folded(v) for v in value]
    if isinstance(value, dict):
        return {k: _folded(v) for k, v in value.items()}
    return value


def _ris_from_fields(paper: dict[str, Any]) -> dict[str, Any]:
    ref: dict[str, Any] = {"type_of_reference": "JOUR", "id": paper.get("id")}
    mapping = {"title": "title", "abstract": "abstract", "journal": "secondary_title",
               "doi": "doi", "year": "year"}  # fmt: skip
    ref.update({ris: str(paper[key]) for key, ris in mapping.items() if paper.get(key)})
    ref["authors"] = [str(a) for a in paper.get("authors") or []]
    ref["keywords"] = [str(k) for k in paper.get("keywords") or []]
    if paper.get("pmid"):
        ref["accession_number"] = str(paper["pmid"])
    return {k: v for k, v in ref.items() if v not in (None, [], "")}


@dataclass
class ExportSummary:
    """Counts over an export's rows: what the CLI's summary table shows."""

    decisions: dict[str, int] = field(default_factory=dict)
    flags: dict[str, int] = field(default_factory=dict)
    clusters: dict[str, int] = field(default_factory=dict)
    statuses: dict[str, int] = field(default_factory=dict)  # indexer: indexing_status

    def add(self, row: dict[str, Any]) -> None:
        def bump(counts: dict[str, int], key: Any) -> None:
            if key:
                counts[str(key)] = counts.get(str(key), 0) + 1

        bump(self.decisions, row.get("decision"))
        bump(self.clusters, row.get("cluster"))
        bump(self.statuses, row.get("indexing_status"))
        for flag in row.get("flags") or []:
            bump(self.flags, flag)
