"""Every import format against hostile files (issue 23): a property test over random bytes,
truncated zips, broken XML, deep nesting and mixed encodings (no exception other than a
4xx domain error, and an answer that serialises), the time budget and cancellation, the
export round trip of hostile titles, and the CLI's checks of --out before any work."""

from __future__ import annotations

import io
import threading
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openpyxl import load_workbook

from crystallise.db.jobs import ItemRow
from crystallise.errors import CrystalliseError, TooLarge
from crystallise.records import limits
from crystallise.records.export import ExportPlan, stream
from crystallise.records.parse import parse_records
from tests.records.hostile import HOSTILE_TITLES, xlsx
from tests.records.test_cli import _cli, _env

FORMATS = ["ris", "nbib", "pubmed_xml", "bibtex", "endnote_xml", "csv", "tsv", "xlsx", None]
SEEDS = {
    "ris": b"TY  - JOUR\nTI  - A title\nAB  - An abstract\nER  - \n",
    "nbib": b"PMID- 1\nTI  - A title\n      continued\nAB  - Text\n\n",
    "pubmed_xml": b"<PubmedArticleSet><PubmedArticle><MedlineCitation><PMID>1</PMID>"
    b"<Article><ArticleTitle>T</ArticleTitle></Article></MedlineCitation></PubmedArticle>"
    b"</PubmedArticleSet>",
    "bibtex": b"@article{k1, title={A {B} title}, year={2020}}\n",
    "endnote_xml": b"<xml><records><record><rec-number>1</rec-number><titles><title>T"
    b"</title></titles></record></records></xml>",
    "csv": b"title,abstract\nA,B\n",
    "tsv": b"title\tabstract\nA\tB\n",
    "xlsx": xlsx([["title", "abstract"], ["A", "B"]]),
}


def _mutations() -> st.SearchStrategy[bytes]:
    seed = st.sampled_from(list(SEEDS.values()))
    return st.one_of(
        st.binary(max_size=2000),
        seed.flatmap(lambda s: st.integers(0, len(s)).map(lambda n: s[:n])),  # truncated
        st.tuples(seed, st.binary(max_size=50), st.integers(0, 400)).map(
            lambda t: t[0][: t[2]] + t[1] + t[0][t[2] :]  # bytes spliced in
        ),
        st.tuples(st.sampled_from([b"{", b"<b>", b"[", b"(\n"]), st.integers(1, 3000)).map(
            lambda t: b"@article{k, title=" + t[0] * t[1] + b"}"  # deep nesting
        ),
        st.text(max_size=300).map(lambda t: ("TY  - JOUR\nTI  - " + t).encode("utf-16")),
        st.text(max_size=300).map(lambda t: t.encode("utf-8") + "é".encode("latin-1")),
    )


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=_mutations(), fmt=st.sampled_from(FORMATS))
def test_any_bytes_in_any_format_is_an_answer_or_a_4xx(data: bytes, fmt: str | None) -> None:
    try:
        result = parse_records(data, format=fmt)  # type: ignore[arg-type]
    except CrystalliseError as exc:
        assert 400 <= exc.status_code < 500 and exc.message
        return
    result.model_dump_json()  # what the route answers must serialise (no lone surrogate)


def test_a_parse_past_its_budget_is_a_413_naming_the_limit() -> None:
    data = b"".join(b"TY  - JOUR\nTI  - Title %d\nER  - \n" % i for i in range(20_000))
    with pytest.raises(TooLarge) as info:
        parse_records(data, budget=limits.ParseBudget(0.05))
    assert "CRYSTALLISE_PARSE_TIME_BUDGET_S" in info.value.message


def test_a_parse_whose_client_has_gone_stops() -> None:
    data = b"".join(b"TY  - JOUR\nTI  - Title %d\nER  - \n" % i for i in range(50_000))
    budget = limits.ParseBudget(600)
    threading.Timer(0.1, budget.cancelled.set).start()
    started = time.monotonic()
    with pytest.raises(limits.ParseCancelled):
        parse_records(data, budget=budget)
    assert time.monotonic() - started < 5


def test_xlsx_cells_over_the_cell_cap_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(limits, "MAX_CELL_CHARS", 1000)
    with pytest.raises(TooLarge) as info:
        parse_records(xlsx([["title"], ["A" * 1001]]))
    assert "1,000 per cell" in info.value.message


def _items() -> list[ItemRow]:
    return [
        ItemRow(
            seq=i,
            item_id=f"p{i}",
            status="completed",
            input={"id": f"p{i}", "title": title, "abstract": "=1+1\nline two"},
            result={"final_score": 4.0, "scores": [4, 4], "reasoning": "-x\nER  - "},
        )
        for i, title in enumerate(HOSTILE_TITLES)
    ]


@pytest.mark.parametrize("kind", ["screening", "indexer"])
def test_every_export_format_is_safe_and_round_trips(kind: str) -> None:
    plan = ExportPlan(kind, threshold=3, repetitions=2, fields=["design"])  # type: ignore[arg-type]
    items = _items()
    if kind == "indexer":
        extracted = {"design": {"value": "=cmd|x", "confidence": 0.9, "evidence": ["@x"]}}
        items = [
            ItemRow(
                i.seq, i.item_id, i.status, {"ID": i.item_id, "Title": i.input["title"]}, extracted
            )
            for i in items
        ]
    ris = b"".join(stream(items, plan, "ris")).decode()
    reread = parse_records(ris.encode())
    assert [r.id for r in reread.records] == [i.item_id for i in items]
    assert [r.title.split() for r in reread.records] == [t.split() for t in HOSTILE_TITLES]
    book = load_workbook(io.BytesIO(b"".join(stream(items, plan, "xlsx"))))
    assert not [c for row in book.active.iter_rows() for c in row if c.data_type == "f"]
    csv_text = b"".join(stream(items, plan, "csv")).decode("utf-8-sig")
    import csv

    cells = [c for row in csv.reader(io.StringIO(csv_text)) for c in row]
    assert not [c for c in cells if c[:1] in ("=", "+", "-", "@", "\t", "\r")]


def test_cli_checks_out_before_any_work(tmp_path: Path, fake: object) -> None:
    (tmp_path / "criteria.yaml").write_text("include:\n  - Trials\n")
    (tmp_path / "refs.ris").write_text("TY  - JOUR\nTI  - A\nER  - \n")
    env = _env(tmp_path, fake)  # type: ignore[arg-type]
    base = ["screen", "refs.ris", "--criteria", "criteria.yaml", "--mock", "--yes"]
    missing = _cli([*base, "--out", "missing/dir/o.csv"], env, tmp_path)
    assert missing.returncode == 2 and "does not exist" in " ".join(missing.stderr.split())
    assert "Traceback" not in missing.stderr
    assert not (tmp_path / "data").exists() or not list((tmp_path / "data").glob("*.db"))
    same = _cli([*base, "--out", "refs.ris"], env, tmp_path)
    assert same.returncode == 2 and "input file" in " ".join(same.stderr.split())
    assert (tmp_path / "refs.ris").read_text() == "TY  - JOUR\nTI  - A\nER  - \n"


@pytest.mark.parametrize(
    "value",
    ["a -- b --- c", "``quoted'' text", "range 5--10 and a~b", "{DNA} of {Escherichia} coli",
     "plain words, it's fine", "x - y"],
)  # fmt: skip
def test_bibtex_fast_path_decodes_as_pylatexenc_does(value: str) -> None:
    """Values without LaTeX commands skip pylatexenc (5 ms each) with the same result."""
    from bibtexparser.middlewares import LatexDecodingMiddleware

    from crystallise.records.formats import _latex_decoding, _unbrace

    fast = _latex_decoding()._transform_python_value_string(value)[0]
    slow = LatexDecodingMiddleware()._transform_python_value_string(value)[0]
    assert _unbrace(fast) == _unbrace(slow)
