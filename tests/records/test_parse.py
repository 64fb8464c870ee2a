"""Import: every format from fixture files written to the formats' published layouts
(multi-line abstracts, non-ASCII authors, missing abstracts, CRLF, a broken record each)."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from crystallise.errors import BadInput
from crystallise.records.parse import detect_format, parse_records

FIXTURES = Path(__file__).parent / "fixtures"


def _read(name: str, **kw: object):  # type: ignore[no-untyped-def]
    return parse_records((FIXTURES / name).read_bytes(), filename=name, **kw)  # type: ignore[arg-type]


def test_ris_with_crlf_multiline_abstract_unicode_authors_and_a_missing_end_tag() -> None:
    result = _read("sample.ris")
    assert (result.format, result.count) == ("ris", 4)
    first = result.records[0]
    assert first.id == "r1" and first.line == 1 and first.year == 2019
    assert first.authors == ["Müller, Anna", "Ødegaard, Bjørn", "山田, 太郎"]
    assert first.abstract.startswith("Background: depression is common. Methods: 120 adults")
    assert (
        first.doi == "10.1000/jgp.2019.001" and first.journal == "Journal of Geriatric Psychiatry"
    )
    assert first.keywords == ["exercise", "depression"]
    assert first.source["notes"] == ["imported from Embase"]  # original fields kept
    assert result.records[1].abstract == ""  # a missing abstract is empty, not an error
    chapter = result.records[3]
    assert chapter.title == "Chapter without an end tag" and chapter.line == 34
    assert [(w.record, w.line) for w in result.warnings] == [(4, 34)]
    assert "ER" in result.warnings[0].message


def test_ris_dedup_log_marks_the_later_copy_and_drops_nothing() -> None:
    result = _read("sample.ris")
    assert [(d.id, d.duplicate_of, d.reason) for d in result.duplicates] == [
        ("r3", "r1", "title_year")
    ]
    assert result.records[2].duplicate_of == "r1" and len(result.records) == 4


def test_nbib_continuation_lines_authors_doi_and_a_stray_line() -> None:
    result = _read("sample.nbib")
    assert (result.format, result.count) == ("nbib", 3)
    first = result.records[0]
    assert first.id == first.pmid == "31000001"
    assert first.title == "Effect of exercise on depression in older adults: a randomised trial."
    assert "randomised to supervised exercise or usual care" in first.abstract
    assert first.authors == ["Müller, Anna", "Ødegaard, Bjørn"]
    assert (first.year, first.doi) == (2019, "10.1000/jgp.2019.001")
    assert "Depression/therapy" in first.keywords and "exercise" in first.keywords
    assert result.records[2].year == 2021
    assert [(w.record, w.line) for w in result.warnings] == [(3, 25)]


def test_pubmed_xml_structured_abstract_collective_author_and_a_malformed_article() -> None:
    result = _read("pubmed.xml")
    assert (result.format, result.count) == ("pubmed_xml", 3)
    first = result.records[0]
    assert first.pmid == "31000001" and first.year == 2019
    assert first.title == "Effect of exercise on depression in older adults: a randomised trial."
    assert (
        first.abstract
        == "BACKGROUND: Depression is common & costly.\nMETHODS: 120 adults were randomised."
    )
    assert first.authors == ["Müller, Anna", "The EXERCISE Group"]
    assert result.records[1].year == 2020  # MedlineDate "2020 Jan-Feb"
    broken = result.records[2]  # imported with what could be read, and reported
    assert (broken.id, broken.title) == ("31000003", "Broken record")
    assert [(w.record, w.line) for w in result.warnings] == [(3, 31)]


def test_endnote_xml_styled_text_and_accession_number() -> None:
    result = _read("endnote.xml")
    assert (result.format, result.count) == ("endnote_xml", 2)
    first = result.records[0]
    assert first.title == "Effect of exercise on depression in older adults"
    assert first.authors == ["Müller, Anna", "Ødegaard, Bjørn"]
    assert (first.pmid, first.doi, first.year) == ("31000001", "10.1000/jgp.2019.001", 2019)
    assert (
        first.abstract == "Background: depression is common. Methods: 120 adults were randomised."
    )


def test_bibtex_latex_is_decoded_and_a_broken_entry_is_salvaged() -> None:
    result = _read("sample.bib")
    assert (result.format, result.count) == ("bibtex", 3)
    first = result.records[0]
    assert first.id == "muller2019" and first.authors == ["Müller, Anna", "Ødegaard, Bjørn"]
    assert first.title == "Effect of Exercise on Depression in Older Adults: A Randomised Trial"
    assert first.keywords == ["exercise", "depression"]
    assert first.source["author"] == 'M{\\"u}ller, Anna and {\\O}degaard, Bj{\\o}rn'  # as written
    assert result.records[2].authors == ["García, José"]
    broken = result.records[1]
    assert (broken.id, broken.title, broken.line) == ("broken2020", "Unclosed brace", 13)
    assert [(w.record, w.line) for w in result.warnings] == [(2, 13)]


def test_scopus_csv_columns_detected_with_quoted_newlines() -> None:
    result = _read("scopus.csv")
    assert (result.format, result.count) == ("csv", 3)
    first = result.records[0]
    assert first.id == "2-s2.0-1" and first.abstract.endswith("Methods: 120 adults.")
    assert first.authors == ["Müller A.", "Ødegaard B."] and first.keywords == [
        "exercise",
        "depression",
    ]
    assert result.records[2].doi == "10.1000/ANX.2" and result.records[2].line == 5
    assert result.records[0].source["Source title"] == "J Geriatr Psychiatry"


def test_web_of_science_tsv_tags_as_columns() -> None:
    result = _read("wos.tsv")
    assert (result.format, result.count) == ("tsv", 2)
    assert (
        result.records[0].id == "WOS:000001" and result.records[0].journal == "J GERIATR PSYCHIATRY"
    )


def test_column_mapping_overrides_detection_and_names_a_missing_column() -> None:
    text = "Ref,Article Name,Summary\n1,First,One\n2,Second,Two\n"
    result = parse_records(text, format="csv", mapping={"title": "Article Name", "id": "Ref"})
    assert [(r.id, r.title, r.abstract) for r in result.records] == [
        ("1", "First", "One"), ("2", "Second", "Two")
    ]  # fmt: skip
    with pytest.raises(BadInput, match=r"mapping\.title: no column named 'Nope'"):
        parse_records(text, format="csv", mapping={"title": "Nope"})
    with pytest.raises(BadInput, match="no title or abstract column"):
        parse_records("a,b\n1,2\n", format="csv")


def test_xlsx_first_sheet() -> None:
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    sheet.append(["Title", "Abstract", "Year", "DOI"])
    sheet.append(["Exercise and mood", "Line one\nline two", 2020, "10.1/abc"])
    sheet.append([None, None, None, None])  # blank rows are skipped
    sheet.append(["Étude", None, "2021", None])
    data = io.BytesIO()
    book.save(data)
    result = parse_records(data.getvalue(), filename="refs.xlsx")
    assert result.format == "xlsx" and result.count == 2
    assert (result.records[0].abstract, result.records[0].year) == ("Line one\nline two", 2020)
    assert (result.records[1].title, result.records[1].line) == ("Étude", 4)


def test_encodings_detected_or_named() -> None:
    latin = _read("latin1.csv")
    assert latin.records[0].title == "Étude de la dépression"
    assert "not UTF-8" in latin.warnings[0].message
    utf16 = parse_records("TY  - JOUR\nTI  - Ünïcode\nER  - \n".encode("utf-16"))
    assert utf16.records[0].title == "Ünïcode" and utf16.encoding == "utf-16"
    named = parse_records("Title\nÅsa\n".encode("latin-1"), encoding="latin-1", format="csv")
    assert named.records[0].title == "Åsa"
    with pytest.raises(BadInput, match="encoding: cannot read the file as 'ascii'"):
        parse_records("Title\nÅsa\n".encode(), encoding="ascii", format="csv")


def test_format_detection_and_unreadable_files() -> None:
    assert detect_format("TY  - JOUR\nER  - \n") == "ris"
    assert detect_format("PMID- 1\nTI  - x\n") == "nbib"
    assert detect_format("@article{k, title={x}}") == "bibtex"
    assert detect_format("<?xml version='1.0'?><PubmedArticleSet>") == "pubmed_xml"
    assert detect_format("<xml><records><record>") == "endnote_xml"
    assert detect_format("a\tb\n") == "tsv"
    with pytest.raises(BadInput, match="could not tell the format"):
        parse_records("just some words")
    with pytest.raises(BadInput, match="not a readable XLSX"):
        parse_records(b"PK\x03\x04 broken zip")
    with pytest.raises(BadInput, match="neither PubMed XML nor EndNote XML"):
        parse_records("<html><body>hi</body></html>")


def test_xml_entity_expansion_is_refused_and_reported() -> None:
    bomb = (
        '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaaaaaaaa">]><PubmedArticleSet>'
        "<PubmedArticle><MedlineCitation><PMID>9</PMID><Article><ArticleTitle>&a;&a;"
        "</ArticleTitle></Article></MedlineCitation></PubmedArticle></PubmedArticleSet>"
    )
    result = parse_records(bomb)
    assert result.count == 1 and result.records[0].id == "9"
    assert "unreadable XML" in result.warnings[0].message


def test_repeated_ids_are_renamed_and_reported() -> None:
    text = "TY  - JOUR\nID  - same\nTI  - One\nER  - \nTY  - JOUR\nID  - same\nTI  - Two\nER  - \n"
    result = parse_records(text)
    assert [r.id for r in result.records] == ["same", "same#2"]
    assert "repeats an earlier record" in result.warnings[0].message


def test_records_without_an_id_are_numbered_and_empty_ones_reported() -> None:
    result = parse_records("TY  - JOUR\nPY  - 2020\nER  - \nTY  - JOUR\nTI  - Two\nER  - \n")
    assert [r.id for r in result.records] == ["1", "2"]
    assert "neither title nor abstract" in result.warnings[0].message


def test_doi_and_pmid_duplicates() -> None:
    text = (
        "PMID,Title,DOI\n1,Alpha study of things,https://doi.org/10.5555/X\n"
        "2,Beta,10.5555/x\n1,Gamma,\n"
    )
    result = parse_records(text, format="csv", mapping={"pmid": "PMID"})
    assert [(d.position, d.duplicate_of, d.reason) for d in result.duplicates] == [
        (2, "1", "doi"), (3, "1", "pmid")
    ]  # fmt: skip


def test_a_ris_tag_line_rispy_cannot_read_costs_only_its_record() -> None:
    """Found by the hostile-bytes property test: a bare "TY  -" (no space after the dash)
    made rispy raise out of the reader."""
    text = b"TY  - JOUR\nTI  - Kept\nER  - \nTY  -\nTI  - lost\nER  - \n"
    result = parse_records(text, format="ris")
    assert [r.title for r in result.records] == ["Kept"]
    assert any("unreadable RIS record" in w.message for w in result.warnings)
