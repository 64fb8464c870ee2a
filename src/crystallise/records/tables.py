"""Spreadsheets of records (CSV, TSV, XLSX) with the columns found by name.

Scopus, Web of Science, Embase, Rayyan and ASReview exports name their columns differently;
``COLUMN_ALIASES`` maps each normalised field to the names seen in those exports. A caller can
override any of them with ``mapping`` (normalised field → column name).
"""

from __future__ import annotations

import csv
import io
import math
import re
import zipfile
import zlib
from typing import Any

from crystallise.errors import BadInput, CrystalliseError, TooLarge
from crystallise.records import limits
from crystallise.records.formats import Parsed, clean_text, doi_of, year_of
from crystallise.records.schemas import ParseWarning

MAX_CELL_CHARS = limits.MAX_CELL_CHARS  # one cell; the request body cap bounds the whole file
COLUMN_ALIASES: dict[str, tuple[str, ...]] = {
    "id": (
        "id",
        "record_id",
        "recordid",
        "key",
        "covidence",
        "eid",
        "ut",
        "accession_number",
        "an",
        "ref_id",
        "refid",
    ),
    "title": ("title", "article_title", "primary_title", "ti", "document_title", "t1"),
    "abstract": ("abstract", "ab", "abstract_note", "abstracts", "summary"),
    "authors": ("authors", "author", "au", "author_full_names", "af", "author_names"),
    "year": ("year", "publication_year", "py", "pubyear", "date", "published_year"),
    "journal": (
        "journal",
        "source_title",
        "so",
        "publication_title",
        "journal_title",
        "source",
        "secondary_title",
    ),
    "doi": ("doi", "di", "digital_object_identifier"),
    "pmid": ("pmid", "pubmed_id", "pm", "pubmed"),
    "keywords": (
        "keywords",
        "author_keywords",
        "de",
        "kw",
        "index_keywords",
        "mesh_terms",
        "manual_tags",
    ),
}


def _key(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", name.strip().lower()).strip("_")


def map_columns(header: list[str], mapping: dict[str, str] | None) -> dict[str, str]:
    """Normalised field → column, from the caller's ``mapping`` first, then the aliases."""
    chosen: dict[str, str] = {}
    for field_name, column in (mapping or {}).items():
        if field_name not in COLUMN_ALIASES:
            raise BadInput(
                f"mapping: unknown field {field_name!r} (one of {', '.join(COLUMN_ALIASES)})"
            )
        if column not in header:
            raise BadInput(f"mapping.{field_name}: no column named {column!r} in the file")
        chosen[field_name] = column
    by_key = {_key(h): h for h in reversed(header)}
    for field_name, aliases in COLUMN_ALIASES.items():
        if field_name not in chosen:
            found = next((by_key[a] for a in aliases if a in by_key), None)
            if found is not None:
                chosen[field_name] = found
    if "title" not in chosen and "abstract" not in chosen:
        raise BadInput(
            f"no title or abstract column among {header[:20]}; name them with `mapping` "
            '(e.g. {"title": "Article Title"})'
        )
    return chosen


def _split(value: str) -> list[str]:
    return [part.strip() for part in re.split(r"[;|]", value) if part.strip()]


def _row_fields(row: dict[str, Any], columns: dict[str, str]) -> dict[str, Any]:
    def get(name: str) -> str:
        value = row.get(columns[name]) if name in columns else None
        return "" if value is None else str(value).strip()

    return {
        "id": get("id") or None,
        "title": get("title"),
        "abstract": get("abstract"),
        "authors": _split(get("authors")),
        "year": year_of(get("year")),
        "journal": get("journal") or None,
        "doi": doi_of(get("doi")),
        "pmid": get("pmid") or None,
        "keywords": _split(get("keywords")),
    }


def read_delimited(
    text: str, delimiter: str, mapping: dict[str, str] | None = None
) -> tuple[list[Parsed], list[ParseWarning]]:
    """CSV or TSV with a header row; every row becomes a record, its columns kept as source."""
    csv.field_size_limit(MAX_CELL_CHARS)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        return _read_rows(reader, mapping)
    except csv.Error as exc:
        raise BadInput(
            f"unreadable {'TSV' if delimiter == chr(9) else 'CSV'} at line {reader.line_num}: {exc}"
        ) from None


def _read_rows(
    reader: Any, mapping: dict[str, str] | None
) -> tuple[list[Parsed], list[ParseWarning]]:
    header = next(reader, None)
    if not header:
        raise BadInput("the file is empty: no header row")
    header = [h.strip() for h in header]
    columns = map_columns(header, mapping)
    records: list[Parsed] = []
    warnings: list[ParseWarning] = []
    line = reader.line_num
    for row in reader:
        limits.checkpoint()
        start, line = line + 1, reader.line_num
        if not any(cell.strip() for cell in row):
            continue
        parsed = Parsed(len(records) + 1, start, {}, dict(zip(header, row, strict=False)))
        if len(row) != len(header):
            parsed.warnings.append(f"has {len(row)} columns, the header has {len(header)}")
        parsed.fields = _row_fields(parsed.source, columns)
        records.append(parsed)
    return records, warnings


def read_xlsx(
    data: bytes, mapping: dict[str, str] | None = None
) -> tuple[list[Parsed], list[ParseWarning]]:
    """The first sheet of an XLSX workbook, header in the first row (openpyxl, read-only),
    after the zip is checked against the decompression caps; rows are read as they come and
    the sheet's declared dimension is never trusted."""
    _check_zip(data)
    try:
        return _read_sheet(data, mapping)
    except CrystalliseError:
        raise
    except (zipfile.BadZipFile, zlib.error, KeyError, OSError, EOFError, ValueError,
            IndexError, TypeError, AttributeError, OverflowError, SyntaxError) as exc:  # fmt: skip
        # openpyxl's own errors on a malformed part: a bad number, a shared-string index out
        # of range, a mismatched tag (ParseError is a SyntaxError), a cell reference past XFD
        raise BadInput(f"not a readable XLSX workbook: {type(exc).__name__}: {exc}"[:300]) from None


def _check_zip(data: bytes) -> None:
    """413 for a workbook that would inflate past the caps (zip bomb); sizes are as the zip
    declares them, which ``zipfile`` enforces while reading."""
    try:
        entries = zipfile.ZipFile(io.BytesIO(data)).infolist()
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        raise BadInput(f"not a readable XLSX workbook: {exc}") from None
    if len(entries) > limits.XLSX_MAX_ENTRIES:
        raise TooLarge(
            f"file: the workbook has {len(entries)} parts, over {limits.XLSX_MAX_ENTRIES}"
        )
    total = sum(e.file_size for e in entries)
    cap = min(
        limits.XLSX_MAX_UNCOMPRESSED, limits.XLSX_ALLOWANCE + limits.XLSX_MAX_RATIO * len(data)
    )
    if total > cap:
        raise TooLarge(
            f"file: the workbook inflates to {total:,} bytes, over the limit of {cap:,} "
            f"(16 MB + {limits.XLSX_MAX_RATIO}x the upload, at most "
            f"{limits.XLSX_MAX_UNCOMPRESSED // 2**20} MB): a zip bomb, or a sheet to split"
        )


def _cell(value: Any, where: str) -> Any:
    if value is None or isinstance(value, bool | int):
        return "" if value is None else value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    text = str(value)
    limits.check_cell(text, where)
    return clean_text(text)


def _read_sheet(
    data: bytes, mapping: dict[str, str] | None
) -> tuple[list[Parsed], list[ParseWarning]]:
    from openpyxl import load_workbook

    book = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    sheet = book.worksheets[0]
    sheet.reset_dimensions()  # a declared A1:XFD1048576 would be read as a million rows
    first = next(sheet.iter_rows(min_row=1, max_row=1, values_only=True), ())
    while first and first[-1] in (None, ""):
        first = first[:-1]
    header = [
        str(_cell(h, "header")).strip() if h not in (None, "") else f"column_{i + 1}"
        for i, h in enumerate(first)
    ]
    if not header:
        raise BadInput("the workbook's first sheet is empty: no header row")
    columns = map_columns(header, mapping)
    records: list[Parsed] = []
    rows = sheet.iter_rows(min_row=2, max_col=len(header), values_only=True)
    for number, row in enumerate(rows, 2):
        limits.checkpoint()
        if number > limits.MAX_SHEET_ROWS:
            raise BadInput(f"file: the sheet has rows past Excel's {limits.MAX_SHEET_ROWS:,}")
        if not any(cell not in (None, "") for cell in row):
            continue
        source = {h: _cell(v, f"row {number}") for h, v in zip(header, row, strict=False)}
        records.append(Parsed(len(records) + 1, number, _row_fields(source, columns), source))
    book.close()
    return records, []
