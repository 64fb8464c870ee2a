"""Import: bytes or text in any supported format → normalised records, a dedup log, warnings.

``parse_records`` is what ``POST /v1/records/parse`` and ``crystallise screen`` call.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any

from crystallise.errors import BadInput
from crystallise.records import formats, limits, tables
from crystallise.records.formats import Parsed, clean_text
from crystallise.records.schemas import (
    DuplicateEntry,
    ImportedRecord,
    ParseResult,
    ParseWarning,
    RecordFormat,
)

_EXTENSIONS: dict[str, RecordFormat] = {
    "ris": "ris", "txt": "ris", "nbib": "nbib", "medline": "nbib", "bib": "bibtex",
    "bibtex": "bibtex", "csv": "csv", "tsv": "tsv", "tab": "tsv", "xlsx": "xlsx",
}  # fmt: skip


def decode(data: bytes, encoding: str | None = None) -> tuple[str, str]:
    """The text and the encoding it was read with: the named one, else UTF-8 (with or without
    a BOM, or UTF-16 with one), else what charset-normalizer detects."""
    if encoding:
        try:
            return data.decode(encoding), encoding
        except (LookupError, UnicodeDecodeError, ValueError, TypeError) as exc:
            raise BadInput(f"encoding: cannot read the file as {encoding!r}: {exc}") from None
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return data.decode("utf-16"), "utf-16"
        except UnicodeDecodeError as exc:
            raise BadInput(f"file: starts as UTF-16 but is not UTF-16 text: {exc}") from None
    try:
        return data.decode("utf-8-sig"), "utf-8"
    except UnicodeDecodeError:
        pass
    from charset_normalizer import from_bytes

    best = from_bytes(data).best()
    if best is None:
        raise BadInput(
            "the file is not text in any encoding we could detect; name it with `encoding`"
        )
    return str(best), best.encoding


def detect_format(text: str, filename: str | None = None) -> RecordFormat:
    """The format from the file name's extension, else from the content."""
    extension = (filename or "").rsplit(".", 1)[-1].lower() if "." in (filename or "") else ""
    head = text.lstrip("\ufeff \r\n\t")[:4000]
    if extension == "xml" or head.startswith("<"):
        if "<PubmedArticle" in head or "PubmedArticleSet" in head:
            return "pubmed_xml"
        if "<record" in head or "<records" in head:
            return "endnote_xml"
        raise BadInput("XML that is neither PubMed XML nor EndNote XML; give `format`")
    if extension in _EXTENSIONS and extension != "txt":
        return _EXTENSIONS[extension]
    if re.search(r"^TY  -", head, re.MULTILINE):
        return "ris"
    if re.search(r"^PMID- ", head, re.MULTILINE):
        return "nbib"
    if re.search(r"^\s*@\w+\s*[{(]", head, re.MULTILINE):
        return "bibtex"
    first = head.splitlines()[0] if head else ""
    if first.count("\t") > first.count(","):
        return "tsv"
    if "," in first:
        return "csv"
    raise BadInput("could not tell the format from the content; give `format` (one of ris, nbib, "
                   "pubmed_xml, bibtex, endnote_xml, csv, tsv, xlsx)")  # fmt: skip


def parse_records(
    data: bytes | str,
    *,
    format: RecordFormat | None = None,
    filename: str | None = None,
    encoding: str | None = None,
    mapping: dict[str, str] | None = None,
    budget: limits.ParseBudget | None = None,
) -> ParseResult:
    """Read every record, normalise it, flag duplicates; raise ``BadInput`` only when the file
    as a whole is unreadable (a bad record is a warning with its position). Under ``budget``
    a parse that runs past its seconds is a 413 and one whose client has gone stops."""
    with limits.limited(budget):
        return _parse(data, format, filename, encoding, mapping)


def _parse(
    data: bytes | str,
    format: RecordFormat | None,
    filename: str | None,
    encoding: str | None,
    mapping: dict[str, str] | None,
) -> ParseResult:
    is_zip = isinstance(data, bytes) and data.startswith(b"PK\x03\x04")
    if format == "xlsx" or (format is None and is_zip):
        if not isinstance(data, bytes):
            raise BadInput("format: xlsx must be uploaded as a file, not sent as text")
        parsed, warnings = tables.read_xlsx(data, mapping)
        return _finish("xlsx", "binary", parsed, warnings)
    text, used = (data, "utf-8") if isinstance(data, str) else decode(data, encoding)
    text = clean_text(text)
    chosen = format or detect_format(text, filename)
    readers: dict[str, Any] = {
        "ris": formats.read_ris, "nbib": formats.read_nbib, "bibtex": formats.read_bibtex,
        "pubmed_xml": formats.read_pubmed_xml, "endnote_xml": formats.read_endnote_xml,
        "csv": lambda t: tables.read_delimited(t, ",", mapping),
        "tsv": lambda t: tables.read_delimited(t, "\t", mapping),
    }  # fmt: skip
    if chosen == "xlsx":
        raise BadInput("format: xlsx must be uploaded as a file, not sent as text")
    parsed, warnings = readers[chosen](text)
    if used not in ("utf-8", "ascii"):
        warnings.insert(0, ParseWarning(message=f"the file is not UTF-8; read it as {used}"))
    return _finish(chosen, used, parsed, warnings)


def _finish(
    chosen: RecordFormat, encoding: str, parsed: list[Parsed], warnings: list[ParseWarning]
) -> ParseResult:
    records, more = _normalise(parsed)
    duplicates = find_duplicates(records)
    warnings = sorted(warnings + more, key=lambda w: (w.line or 0, w.record or 0))
    return ParseResult(
        format=chosen,
        encoding=encoding,
        count=len(records),
        records=records,
        duplicates=duplicates,
        warnings=warnings,
    )


def _normalise(parsed: list[Parsed]) -> tuple[list[ImportedRecord], list[ParseWarning]]:
    """Records with unique ids (the file's own id where it has one) and a warning for each
    record that is unreadable in part or has neither title nor abstract."""
    seen: set[str] = set()
    records: list[ImportedRecord] = []
    warnings: list[ParseWarning] = []
    for item in parsed:
        fields = dict(item.fields)
        record_id = str(fields.pop("id") or "").strip()[:500] or str(item.position)
        if record_id in seen:
            item.warnings.append(f"id {record_id!r} repeats an earlier record; renamed")
            record_id = f"{record_id}#{item.position}"
        seen.add(record_id)
        if not (fields["title"] or "").strip() and not (fields["abstract"] or "").strip():
            item.warnings.append("has neither title nor abstract")
        records.append(
            ImportedRecord(
                id=record_id, position=item.position, line=item.line, source=item.source, **fields
            )
        )
        warnings += [
            ParseWarning(
                record=item.position, line=item.line, message=f"record {item.position}: {m}"
            )
            for m in item.warnings
        ]
    return records, warnings


def _title_key(title: str) -> str:
    text = unicodedata.normalize("NFKD", title.lower())
    return " ".join(re.findall(r"[a-z0-9]+", text.encode("ascii", "ignore").decode()))


def find_duplicates(records: list[ImportedRecord]) -> list[DuplicateEntry]:
    """Mark each record that repeats an earlier one by DOI, PMID or normalised title + year
    (``duplicate_of``) and return the dedup log. Records without a title never match by title."""
    first: dict[tuple[str, str], str] = {}
    log: list[DuplicateEntry] = []
    for record in records:
        keys: list[tuple[Any, str]] = [
            ("doi", (record.doi or "").lower()),
            ("pmid", record.pmid or ""),
        ]
        title = _title_key(record.title)
        keys.append(("title_year", f"{title}|{record.year or ''}" if len(title) >= 10 else ""))
        for reason, value in keys:
            if value and (reason, value) in first:
                record.duplicate_of = first[(reason, value)]
                log.append(DuplicateEntry(id=record.id, duplicate_of=record.duplicate_of,
                                          reason=reason, position=record.position))  # fmt: skip
                break
        for reason, value in keys:
            if value:
                first.setdefault((reason, value), record.duplicate_of or record.id)
    return log
