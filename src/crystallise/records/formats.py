"""Readers for the formats bibliographic databases export.

Each reader turns a file's text (or bytes, for XLSX) into ``Parsed`` records: the normalised
fields it found plus the original fields (``source``), and a warning with the record or line
number for anything it could not read. A record that is only partly readable is still
returned with what could be read: nothing is lost silently.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from crystallise.records import limits
from crystallise.records.schemas import ParseWarning


@dataclass
class Parsed:
    """One record as read: normalised candidates (``fields``) and the original fields."""

    position: int
    line: int | None
    fields: dict[str, Any]
    source: dict[str, Any]
    warnings: list[str] = field(default_factory=list)


Reader = Callable[[str], tuple[list[Parsed], list[ParseWarning]]]
# The normalised fields of a record nothing could be read from (salvaged records start here).
EMPTY_FIELDS: dict[str, Any] = {"id": None, "title": "", "abstract": "", "authors": [],
                                "year": None, "journal": None, "doi": None, "pmid": None,
                                "keywords": []}  # fmt: skip

_YEAR = re.compile(r"\b(1[5-9]\d\d|20\d\d|2100)\b")
_DOI = re.compile(r"10\.\d{4,9}/\S+", re.IGNORECASE)


_UNSENDABLE = re.compile("[\x00\ud800-\udfff]")


def clean_text(text: str) -> str:
    """Text that job creation accepts as it is: NUL characters removed, lone surrogates (which
    ``unicode_escape`` or ``utf-7`` can produce, and no JSON can carry) made U+FFFD."""
    if not _UNSENDABLE.search(text):
        return text
    return _UNSENDABLE.sub(lambda m: "" if m.group() == "\x00" else "\ufffd", text)


def year_of(value: Any) -> int | None:
    """The first plausible four-digit year in a date string ("2019/03/01", "2019 Mar")."""
    match = _YEAR.search(str(value or ""))
    return int(match.group(1)) if match else None


def doi_of(value: Any) -> str | None:
    """A DOI from a bare DOI, a doi.org URL or a "10.x/y [doi]" MEDLINE value."""
    match = _DOI.search(str(value or ""))
    return match.group(0).rstrip(".,;") if match else None


# ---- RIS (rispy) ---------------------------------------------------------------------------
_RIS_TAG = re.compile(r"^([A-Z][A-Z0-9])  -( |$)")
_RIS_HEADER = re.compile(r"^\s*\d+\.\s*$")  # rispy/EndNote record counters ("1.")


def _ris_chunks(text: str) -> Iterator[tuple[int, list[str], bool]]:
    """(first line number, lines, ended with ER) per record; stray lines are their own chunk."""
    start, lines = 0, list[str]()
    for number, line in enumerate(text.splitlines(), 1):
        if line.startswith("TY  -"):
            if lines:
                yield start, lines, False
            start, lines = number, [line]
        elif lines:
            lines.append(line)
            if line.startswith("ER  -"):
                yield start, lines, True
                lines = []
        elif line.strip() and not _RIS_HEADER.match(line):
            yield number, [line], False
    if lines:
        yield start, lines, False


def read_ris(text: str) -> tuple[list[Parsed], list[ParseWarning]]:
    """RIS through rispy, one record at a time so a bad record costs only itself."""
    import rispy

    records: list[Parsed] = []
    warnings: list[ParseWarning] = []
    for start, lines, ended in _ris_chunks(text):
        limits.checkpoint()
        if not lines[0].startswith("TY  -"):
            warnings.append(
                ParseWarning(line=start, message=f"not in a RIS record: {lines[0]!r:.80}")
            )
            continue
        body = lines if ended else [*lines, "ER  - "]
        try:
            source = rispy.loads("\n".join(body))[0]
        except (rispy.parser.ParseError, IndexError) as exc:  # a tag line rispy cannot read
            message = str(exc).splitlines()[0] if str(exc) else "no record read"
            warnings.append(
                ParseWarning(line=start, message=f"unreadable RIS record: {message:.80}")
            )
            continue
        parsed = Parsed(len(records) + 1, start, _ris_fields(source), source)
        if not ended:
            parsed.warnings.append("record has no 'ER  -' end tag; read up to the next record")
        records.append(parsed)
    return records, warnings


def _ris_fields(ref: dict[str, Any]) -> dict[str, Any]:
    first = next((ref[k] for k in ("title", "primary_title", "translated_title") if ref.get(k)), "")
    authors = ref.get("authors") or ref.get("first_authors") or []
    journal = next(
        (
            ref[k]
            for k in ("secondary_title", "journal_name", "alternate_title3", "alternate_title1")
            if ref.get(k)
        ),
        None,
    )
    return {
        "id": ref.get("id") or ref.get("accession_number"),
        "title": first,
        "abstract": ref.get("abstract") or ref.get("notes_abstract") or "",
        "authors": list(authors),
        "year": year_of(ref.get("year") or ref.get("publication_year") or ref.get("date")),
        "journal": journal,
        "doi": doi_of(ref.get("doi")) or doi_of(" ".join(ref.get("urls") or [])),
        "pmid": None,
        "keywords": list(ref.get("keywords") or []),
    }


# ---- MEDLINE / PubMed nbib ------------------------------------------------------------------
_NBIB_TAG = re.compile(r"^([A-Z0-9]{2,4})\s*- ?(.*)$")


def _nbib_chunks(text: str) -> Iterator[tuple[int, list[str]]]:
    start, lines = 0, list[str]()
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            if lines:
                yield start, lines
            lines = []
            continue
        if not lines:
            start = number
        lines.append(line)
    if lines:
        yield start, lines


def read_nbib(text: str) -> tuple[list[Parsed], list[ParseWarning]]:
    """MEDLINE-format records (PubMed's "Save: PubMed format", .nbib): ``TAG - value`` lines,
    six-space continuation lines, a blank line between records."""
    records: list[Parsed] = []
    warnings: list[ParseWarning] = []
    for start, lines in _nbib_chunks(text):
        limits.checkpoint()
        parts: dict[str, list[list[str]]] = {}  # a field's lines joined once (linear)
        last: str | None = None
        problems: list[str] = []
        for offset, line in enumerate(lines):
            match = _NBIB_TAG.match(line)
            if match and not line.startswith(" "):
                last = match.group(1)
                parts.setdefault(last, []).append([match.group(2).strip()])
            elif last is not None and line.startswith(" "):
                parts[last][-1].append(line.strip())
            else:
                problems.append(f"line {start + offset}: not a MEDLINE field: {line!r:.60}")
        if not parts:
            warnings.append(ParseWarning(line=start, message=problems[0]))
            continue
        tags = {tag: [" ".join(p).strip() for p in values] for tag, values in parts.items()}
        parsed = Parsed(len(records) + 1, start, _nbib_fields(tags), tags, problems)
        records.append(parsed)
    return records, warnings


def _nbib_fields(tags: dict[str, list[str]]) -> dict[str, Any]:
    def one(*names: str) -> str | None:
        return next((tags[n][0] for n in names if tags.get(n)), None)

    dois = [v for v in tags.get("LID", []) + tags.get("AID", []) if "[doi]" in v]
    return {
        "id": one("PMID"),
        "title": one("TI", "BTI") or "",
        "abstract": one("AB") or "",
        "authors": tags.get("FAU") or tags.get("AU") or [],
        "year": year_of(one("DP", "DEP")),
        "journal": one("JT", "TA"),
        "doi": doi_of(dois[0]) if dois else None,
        "pmid": one("PMID"),
        "keywords": (tags.get("OT") or []) + (tags.get("MH") or []),
    }


# ---- XML (PubMed XML, EndNote XML), record by record ------------------------------------------
def _element_spans(text: str, element: str) -> Iterator[tuple[int, int]]:
    """(start, end) of each ``<element ...>…</element>`` in one forward pass: each opening
    tag looks for its end once, and an element never closed runs to the end of the text
    (no backtracking over the rest of the file for every unclosed tag)."""
    opening = re.compile(rf"<{element}(?=[\s/>])")
    closing = re.compile(rf"</{element}\s*>")
    position = 0
    while (start := opening.search(text, position)) is not None:
        end = closing.search(text, start.end())
        if end is None:
            yield start.start(), len(text)
            return
        yield start.start(), end.end()
        position = end.end()


def _xml_chunks(text: str, element: str) -> Iterator[tuple[int, str]]:
    line, last = 1, 0
    for start, end in _element_spans(text, element):
        line += text.count("\n", last, start)
        last = start
        yield line, text[start:end]


def _read_xml(
    text: str, element: str, fields: Callable[[Any], tuple[dict[str, Any], dict[str, Any]]]
) -> tuple[list[Parsed], list[ParseWarning]]:
    from defusedxml import ElementTree

    records: list[Parsed] = []
    warnings: list[ParseWarning] = []
    for line, chunk in _xml_chunks(text, element):
        limits.checkpoint()
        try:
            normal, source = fields(ElementTree.fromstring(chunk))
            problems = []
        # ValueError: defusedxml refusals; RecursionError: elements nested thousands deep
        except (ElementTree.ParseError, ValueError, RecursionError) as exc:
            reason = "elements nested too deep" if isinstance(exc, RecursionError) else exc
            normal, source = _salvage_xml(chunk)
            problems = [f"unreadable XML ({reason}); imported the id and title only"]
        records.append(Parsed(len(records) + 1, line, normal, source, problems))
    if not records and not warnings:
        warnings.append(ParseWarning(message=f"no <{element}> elements found"))
    return records, warnings


def _text(node: Any) -> str:
    return " ".join(" ".join(node.itertext()).split()) if node is not None else ""


def _strip_tags(fragment: str) -> str:
    return " ".join(re.sub(r"<[^<>]*>", " ", fragment).split())  # [^<>]: linear on stray '<'s


def _salvage_xml(chunk: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """What a malformed record still says: its id and title, tags stripped."""

    def find(*tags: str) -> str:
        for tag in tags:
            for start, end in _element_spans(chunk, tag):
                inner = chunk[start:end]
                inner = inner[inner.find(">") + 1 :]
                return _strip_tags(re.sub(rf"</{tag}\s*>$", "", inner))
        return ""

    record_id = find("PMID", "rec-number") or None
    title = find("ArticleTitle", "title")
    pmid = record_id if (record_id or "").isdigit() and "<PMID" in chunk else None
    normal = {**EMPTY_FIELDS, "id": record_id, "title": title, "pmid": pmid}
    return normal, {"title": title} if title else {}


def _pubmed_fields(node: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    article = node.find(".//Article")
    parts = []
    for part in node.findall(".//Abstract/AbstractText"):
        label = part.get("Label")
        parts.append(f"{label}: {_text(part)}" if label else _text(part))
    authors = []
    for author in node.findall(".//AuthorList/Author"):
        name = ", ".join(
            x for x in (_text(author.find("LastName")), _text(author.find("ForeName"))) if x
        )
        authors.append(name or _text(author.find("CollectiveName")))
    ids = {i.get("IdType"): _text(i) for i in node.findall(".//ArticleIdList/ArticleId")}
    elocation = next(
        (_text(e) for e in node.findall(".//ELocationID") if e.get("EIdType") == "doi"), None
    )
    pmid = _text(node.find(".//MedlineCitation/PMID")) or ids.get("pubmed")
    normal = {
        "id": pmid,
        "title": _text(article.find("ArticleTitle")) if article is not None else "",
        "abstract": "\n".join(parts),
        "authors": [a for a in authors if a],
        "year": year_of(_text(node.find(".//JournalIssue/PubDate"))),
        "journal": _text(node.find(".//Journal/Title")) or None,
        "doi": doi_of(ids.get("doi") or elocation),
        "pmid": pmid or None,
        "keywords": [_text(k) for k in node.findall(".//KeywordList/Keyword")]
        + [_text(k) for k in node.findall(".//MeshHeading/DescriptorName")],
    }
    return normal, {k: v for k, v in normal.items() if v not in (None, "", [])}


def _endnote_fields(node: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    def first(path: str) -> str:
        return _text(node.find(path))

    normal = {
        "id": first("rec-number") or None,
        "title": first("titles/title"),
        "abstract": first("abstract"),
        "authors": [_text(a) for a in node.findall("contributors/authors/author")],
        "year": year_of(first("dates/year")),
        "journal": first("periodical/full-title") or first("titles/secondary-title") or None,
        "doi": doi_of(first("electronic-resource-num")),
        "pmid": None,
        "keywords": [_text(k) for k in node.findall("keywords/keyword")],
    }
    accession = first("accession-num")
    if accession.isdigit():
        normal["pmid"] = accession
    return normal, {k: v for k, v in normal.items() if v not in (None, "", [])}


def read_pubmed_xml(text: str) -> tuple[list[Parsed], list[ParseWarning]]:
    """PubMed XML (``PubmedArticleSet``): one ``PubmedArticle`` per record."""
    return _read_xml(text, "PubmedArticle", _pubmed_fields)


def read_endnote_xml(text: str) -> tuple[list[Parsed], list[ParseWarning]]:
    """EndNote XML export (``<xml><records><record>``)."""
    return _read_xml(text, "record", _endnote_fields)


# ---- BibTeX (bibtexparser) -----------------------------------------------------------------
_BIBTEX_NORMALISED = frozenset(
    {"title", "abstract", "author", "year", "date", "journal", "booktitle", "doi", "pmid",
     "keywords"}
)  # fmt: skip


def read_bibtex(text: str) -> tuple[list[Parsed], list[ParseWarning]]:
    """BibTeX through bibtexparser; LaTeX is decoded in the normalised fields only."""
    from bibtexparser.entrypoint import parse_string

    limits.check_nesting(text)
    limits.checkpoint()
    raw = parse_string(text)
    records = [_salvage_bibtex(block) for block in raw.failed_blocks]
    warnings: list[ParseWarning] = []
    decode = _latex_decoding()._transform_python_value_string
    for number, entry in enumerate(raw.entries, 1):
        limits.checkpoint()
        # LaTeX decoded in the fields the record is normalised from only; source stays raw
        values = {
            f.key.lower(): decode(f.value)[0] if isinstance(f.value, str) else f.value
            for f in entry.fields
            if f.key.lower() in _BIBTEX_NORMALISED
        }
        source = {"ENTRYTYPE": entry.entry_type, "ID": entry.key}
        source.update({f.key: f.value for f in entry.fields})
        normal = {
            "id": entry.key,
            "title": _unbrace(values.get("title", "")),
            "abstract": _unbrace(values.get("abstract", "")),
            "authors": [
                a.strip()
                for a in re.split(r"\s+and\s+", _unbrace(values.get("author", "")))
                if a.strip()
            ],
            "year": year_of(values.get("year") or values.get("date")),
            "journal": _unbrace(values.get("journal") or values.get("booktitle") or "") or None,
            "doi": doi_of(values.get("doi")),
            "pmid": values.get("pmid"),
            "keywords": [
                k.strip()
                for k in re.split(r"[;,]", _unbrace(values.get("keywords", "")))
                if k.strip()
            ],
        }
        records.append(Parsed(number, (entry.start_line or 0) + 1, normal, source))
    records.sort(key=lambda r: r.line or 0)
    for number, record in enumerate(records, 1):
        record.position = number
    return records, warnings


# Values without LaTeX commands or math get only the typography pylatexenc would apply (the
# braces are removed by _unbrace in any case); values with them go through pylatexenc. A bare
# "%" is left alone: exports escape it as "\%", and decoding a bare one as a LaTeX comment
# would drop the rest of the line ("a 5% rise in ...").
_LATEX_MARKUP = re.compile(r"[\\$]")  # commands and math: pylatexenc decodes these
_LATEX_TYPOGRAPHY = (("---", "\u2014"), ("--", "\u2013"), ("``", "\u201c"), ("''", "\u201d"),
                     ("~", "\u00a0"))  # fmt: skip


@functools.cache
def _latex_decoding() -> Any:
    """bibtexparser's LaTeX decoding, skipped for values with nothing to decode: pylatexenc
    costs ~5 ms per abstract, which made BibTeX parse at 0.35 MB/s (bench/RESULTS.md)."""
    from bibtexparser.middlewares import LatexDecodingMiddleware

    class _OnlyWhereNeeded(LatexDecodingMiddleware):  # type: ignore[misc]
        def _transform_python_value_string(self, python_string: str) -> tuple[str, str]:
            if _LATEX_MARKUP.search(python_string):
                return super()._transform_python_value_string(python_string)  # type: ignore[no-any-return]
            for latex, text in _LATEX_TYPOGRAPHY:  # what pylatexenc makes of them, in order
                python_string = python_string.replace(latex, text)
            return python_string, ""

    return _OnlyWhereNeeded()


def _salvage_bibtex(block: Any) -> Parsed:
    """A block bibtexparser could not read: its key and title, as far as they are readable."""
    raw = str(block.raw)
    key = re.match(r"\s*@\w+\s*[{(]\s*([^,\s]+)", raw)
    title = re.search(r"\btitle\s*=\s*[{\"]([^\n]*)", raw, re.IGNORECASE)
    normal = {**EMPTY_FIELDS, "id": key.group(1) if key else None,
              "title": _unbrace(title.group(1)).strip('",') if title else ""}  # fmt: skip
    error = str(block.error).strip() or type(block.error).__name__
    problem = f"unreadable BibTeX ({error}); imported the key and title only"
    return Parsed(0, (block.start_line or 0) + 1, normal, {"raw": raw}, [problem])


def _unbrace(value: str) -> str:
    return " ".join(value.replace("{", "").replace("}", "").split())
