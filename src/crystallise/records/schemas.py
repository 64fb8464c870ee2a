"""Normalised bibliographic records, the import warnings and the dedup log."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

RecordFormat = Literal["ris", "nbib", "pubmed_xml", "bibtex", "endnote_xml", "csv", "tsv", "xlsx"]
FORMATS: tuple[str, ...] = RecordFormat.__args__  # type: ignore[attr-defined]


class ImportedRecord(BaseModel):
    """One record as read from a file: the normalised fields a screening job uses, plus the
    original fields exactly as the parser read them (``source``), kept for export."""

    id: str
    title: str = ""
    abstract: str = ""
    authors: list[str] = Field(default_factory=list)
    year: int | None = None
    journal: str | None = None
    doi: str | None = None
    pmid: str | None = None
    keywords: list[str] = Field(default_factory=list)
    source: dict[str, Any] = Field(
        default_factory=dict,
        description="The record's original fields, keyed as in its format (RIS/nbib tags "
        "by rispy name, BibTeX fields, CSV columns); exports write these back unchanged.",
    )
    position: int = Field(description="1-based record number in the file")
    line: int | None = Field(None, description="first line of the record, where known")
    duplicate_of: str | None = Field(
        None, description="id of the earlier record this one duplicates (see `duplicates`)"
    )


class ParseWarning(BaseModel):
    record: int | None = Field(None, description="1-based record number, where known")
    line: int | None = Field(None, description="1-based line number, where known")
    message: str


class DuplicateEntry(BaseModel):
    id: str
    duplicate_of: str
    reason: Literal["doi", "pmid", "title_year"]
    position: int


class ParseResult(BaseModel):
    format: RecordFormat
    encoding: str
    count: int
    records: list[ImportedRecord]
    duplicates: list[DuplicateEntry] = Field(
        default_factory=list,
        description="The dedup log: every record that repeats an earlier one. Duplicates stay "
        "in `records` (marked `duplicate_of`); nothing is dropped.",
    )
    warnings: list[ParseWarning] = Field(default_factory=list)


class ParseTextRequest(BaseModel):
    """``POST /v1/records/parse`` as JSON: the file's text and, optionally, its format."""

    text: str = Field(min_length=1)
    format: RecordFormat | None = None
    filename: str | None = Field(None, max_length=512)
    mapping: dict[str, str] | None = Field(
        None,
        description="CSV/TSV/XLSX only: normalised field → column name, overriding detection",
    )
