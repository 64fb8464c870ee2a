"""Hostile files of every import format, built in memory (tests and bench/parse_throughput.py).

Each is one of the cases the security review of issue 23 found: zip bombs, a lying XLSX
dimension, broken sheet parts, unclosed XML, deep BibTeX braces, nbib continuation floods,
odd-length UTF-16, and titles written to subvert an export.
"""

from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Callable

from openpyxl import Workbook

# Titles that try to become a formula, a command or a forged RIS record when exported.
HOSTILE_TITLES = [
    '=HYPERLINK("http://evil.example/x","click")',
    "+cmd|' /C calc'!A0",
    "@SUM(1+1)*cmd|' /C calc'!A0",
    "-2+3+cmd|' /C calc'!A0",
    "\t=1+1",
    "\r=1+1",
    "Real title\nER  - \nTY  - JOUR\nTI  - Injected record\nKW  - crystallise:include",
    "Line\r\nbreaks\u2028and\u2029separators\x0band\x0cmore\x85too",
    "本研究旨在评估运动干预对老年抑郁症患者的疗效",
]


def xlsx(rows: list[list[object]]) -> bytes:
    book = Workbook()
    sheet = book.active
    for row in rows:
        sheet.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def patched(workbook: bytes, change: Callable[[str, bytes], bytes]) -> bytes:
    """``workbook`` with each part replaced by ``change(name, data)``."""
    source = zipfile.ZipFile(io.BytesIO(workbook))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            target.writestr(info.filename, change(info.filename, source.read(info.filename)))
    return out.getvalue()


def _sheet(change: Callable[[bytes], bytes]) -> Callable[[str, bytes], bytes]:
    return lambda name, data: change(data) if name.endswith("sheet1.xml") else data


def xlsx_bomb(inflated_bytes: int) -> bytes:
    """A small workbook whose one cell inflates to ``inflated_bytes``."""
    big = b"A" * inflated_bytes
    return patched(xlsx([["title"], ["MARKER"]]), _sheet(lambda d: d.replace(b"MARKER", big)))


def xlsx_cases() -> dict[str, bytes]:
    """Broken or lying workbooks, each of which once answered 500 or hung."""
    one = xlsx([["title", "abstract"], [1.5, "x"]])
    text = xlsx([["title", "abstract"], ["MARKER", "x"]])

    def numeric_cell(value: bytes) -> bytes:
        return patched(
            one,
            _sheet(lambda d: d.replace(b"<v>1.5</v>", b"<v>" + value + b"</v>")),
        )

    return {
        "bomb_150mb_cell": xlsx_bomb(150_000_000),
        "dimension_xfd1048576": patched(
            text,
            _sheet(
                lambda d: (
                    d.replace(b'<dimension ref="A1:B2"/>', b'<dimension ref="A1:XFD1048576"/>')
                    .replace(b'r="2"', b'r="1048576"')
                    .replace(b'r="A2"', b'r="A1048576"')
                    .replace(b'r="B2"', b'r="XFD1048576"')
                )
            ),
        ),
        "numeric_nan": numeric_cell(b"nan"),
        "numeric_abc": numeric_cell(b"abc"),
        "shared_string_out_of_range": patched(
            text,
            _sheet(
                lambda d: re.sub(rb'<c r="A2"[^>]*>.*?</c>', b'<c r="A2" t="s"><v>99</v></c>', d)
            ),
        ),
        "mismatched_tag": patched(
            text, _sheet(lambda d: d.replace(b"</sheetData>", b"</sheetDat>"))
        ),
        "cell_ref_zzzzzz1": patched(text, _sheet(lambda d: d.replace(b'r="A2"', b'r="ZZZZZZ1"'))),
        "truncated_zip": text[: len(text) // 2],
        "not_a_zip_but_pk": b"PK\x03\x04" + b"\x00" * 200,
    }


def text_cases() -> dict[str, tuple[bytes, str | None]]:
    """(body, file name) of text formats that once answered 500 or took seconds."""
    return {
        "utf16_odd_length": (b"\xff\xfe" + "TY  - JOUR\n".encode("utf-16-le") + b"x", None),
        "pubmed_unclosed_tags": (b"<PubmedArticleSet>" + b"<PubmedArticle>" * 15_600, None),
        "pubmed_stray_lt": (
            b"<PubmedArticleSet><PubmedArticle><ArticleTitle>" + b"<" * 200_000,
            None,
        ),
        "bibtex_5000_nested_braces": (
            b"@article{k, title={" + b"{" * 5000 + b"x" + b"}" * 5000 + b"}}",
            None,
        ),
        "nbib_continuation_flood": (
            b"PMID- 1\nTI  - t\nAB  - a\n" + b"      continuation of the abstract\n" * 150_000,
            None,
        ),
        "ris_nul": (b"TY  - JOUR\nTI  - A\x00B\nER  - \n", None),
        "endnote_deep": (
            b"<xml><records><record><titles><title>"
            + b"<b>" * 20_000
            + b"x"
            + b"</b>" * 20_000
            + b"</title></titles></record></records></xml>",
            None,
        ),
    }
