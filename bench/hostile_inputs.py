"""Hostile and large inputs (issue 23): parse throughput and peak memory per format for a
20,000-record file, the bombs and broken files the security review found, and GET /health
latency while ten 100,000-character CJK papers are submitted to `crystallise serve`.

    uv run --frozen python -m bench.hostile_inputs [--records 20000] [--skip-health]

Throughput is timed without tracemalloc; peak Python memory is a second pass under it.
The /health phase starts `crystallise serve` on its defaults (SQLite, job process, mock mode
for the jobs) and polls /health at about 50 Hz before and during ten concurrent submissions.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import statistics
import tempfile
import threading
import time
import tracemalloc
from html import escape
from pathlib import Path
from typing import Any

import httpx

from bench.screening_throughput import load_papers


def _records(n: int) -> list[dict[str, Any]]:
    base = load_papers(2000)
    return [{**base[i % len(base)], "id": f"rec{i}", "year": 1990 + i % 35} for i in range(n)]


def _files(records: list[dict[str, Any]]) -> dict[str, bytes]:
    from tests.records.hostile import xlsx

    ris, nbib, pubmed, bib, endnote = [], [], ["<PubmedArticleSet>"], [], ["<xml><records>"]
    for i, r in enumerate(records):
        t, a = r["title"], r["abstract"] or ""
        ris += ["TY  - JOUR", f"ID  - {r['id']}", f"TI  - {t}", f"PY  - {r['year']}",
                f"AB  - {a}", "ER  - ", ""]  # fmt: skip
        nbib += [f"PMID- {i + 1}", f"TI  - {t}", f"DP  - {r['year']}", f"AB  - {a}", ""]
        pubmed.append(
            f"<PubmedArticle><MedlineCitation><PMID>{i + 1}</PMID><Article><ArticleTitle>"
            f"{escape(t)}</ArticleTitle><Abstract><AbstractText>{escape(a)}</AbstractText>"
            "</Abstract></Article></MedlineCitation></PubmedArticle>"
        )
        clean = lambda s: s.replace("{", "(").replace("}", ")")  # noqa: E731
        bib.append(f"@article{{k{i}, title={{{clean(t)}}}, abstract={{{clean(a)}}}, "
                   f"year={{{r['year']}}}}}\n")  # fmt: skip
        endnote.append(
            f"<record><rec-number>{i + 1}</rec-number><titles><title>{escape(t)}</title>"
            f"</titles><abstract>{escape(a)}</abstract></record>"
        )
    table = io.StringIO()
    writer = csv.writer(table)
    writer.writerow(["id", "title", "abstract", "year"])
    writer.writerows([r["id"], r["title"], r["abstract"], r["year"]] for r in records)
    from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

    rows = [["id", "title", "abstract", "year"]]
    rows += [
        [r["id"], r["title"], ILLEGAL_CHARACTERS_RE.sub("", r["abstract"] or ""), r["year"]]
        for r in records
    ]
    return {
        "ris": "\n".join(ris).encode(),
        "nbib": "\n".join(nbib).encode(),
        "pubmed_xml": ("".join(pubmed) + "</PubmedArticleSet>").encode(),
        "bibtex": "".join(bib).encode(),
        "endnote_xml": ("".join(endnote) + "</records></xml>").encode(),
        "csv": table.getvalue().encode(),
        "tsv": table.getvalue().replace(",", "\t").encode(),
        "xlsx": xlsx(rows),  # type: ignore[arg-type]
    }


def _measure(data: bytes, fmt: str | None) -> tuple[float, float, str]:
    """Seconds, peak MB of Python memory, and the outcome of one parse."""
    from crystallise.errors import CrystalliseError
    from crystallise.records.parse import parse_records

    outcome = ""
    started = time.perf_counter()
    try:
        outcome = f"{parse_records(data, format=fmt).count} records"  # type: ignore[arg-type]
    except CrystalliseError as exc:
        outcome = f"{exc.status_code}: {exc.message[:60]}"
    seconds = time.perf_counter() - started
    tracemalloc.start()
    try:
        parse_records(data, format=fmt)  # type: ignore[arg-type]
    except CrystalliseError:
        pass
    peak = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    return seconds, peak, outcome


def parse_table(records: int) -> None:
    print(f"| format ({records:,} records) | MB | s | MB/s | peak MB | peak / size | outcome |")
    print("|---|---|---|---|---|---|---|")
    for fmt, data in _files(_records(records)).items():
        seconds, peak, outcome = _measure(data, fmt)
        mb = len(data) / 2**20
        print(f"| {fmt} | {mb:.1f} | {seconds:.2f} | {mb / seconds:.1f} | {peak:.0f} | "
              f"{peak / mb:.1f}x | {outcome} |")  # fmt: skip


def bomb_table() -> None:
    from tests.records.hostile import text_cases, xlsx_cases

    print("\n| hostile file | bytes | s | peak MB | outcome |")
    print("|---|---|---|---|---|")
    cases = {k: (v, "xlsx") for k, v in xlsx_cases().items()}
    cases.update({k: (v, None) for k, (v, _) in text_cases().items()})
    for name, (data, fmt) in cases.items():
        seconds, peak, outcome = _measure(data, fmt)
        print(f"| {name} | {len(data):,} | {seconds:.2f} | {peak:.1f} | {outcome} |")


def health_during_cjk() -> None:
    from bench.soak import _proc
    from tests.fake_openai import free_port

    cjk = "".join(chr(0x4E00 + (i * 7919) % 20000) for i in range(100_000))
    with tempfile.TemporaryDirectory() as tmp:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CRYSTALLISE_")}
        env["CRYSTALLISE_DATA_DIR"] = tmp
        port = free_port()
        proc = _proc(["serve", "--port", str(port)], env, Path(tmp) / "serve.log")
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                try:
                    if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    time.sleep(0.2)
            idle = _poll(base, lambda: time.sleep(3))
            busy = _poll(base, lambda: _submit(base, cjk))
        finally:
            proc.terminate()
            proc.wait(10)
    print("\n| /health | samples | p50 ms | p99 ms | max ms |")
    print("|---|---|---|---|---|")
    phases = (("idle, 3 s", idle), ("5 x ten concurrent 100k-char CJK papers", busy))
    for name, lat in phases:
        q = statistics.quantiles(lat, n=100)
        print(f"| {name} | {len(lat)} | {q[49]:.1f} | {q[98]:.1f} | {max(lat):.1f} |")


def _submit(base: str, cjk: str) -> None:
    def one(i: int) -> None:
        body = {"papers": [{"id": f"c{i}", "title": "x" * 30_000, "abstract": cjk}], "mock": True}
        r = httpx.post(f"{base}/v1/screening/jobs", content=json.dumps(body),
                       headers={"content-type": "application/json"}, timeout=120)  # fmt: skip
        assert r.status_code < 300, r.text[:200]

    for round_ in range(5):  # five rounds of ten concurrent submissions
        threads = [threading.Thread(target=one, args=(round_ * 10 + i,)) for i in range(10)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()


def _poll(base: str, work: Any) -> list[float]:
    stop = threading.Event()
    latencies: list[float] = []

    def poll() -> None:
        while not stop.is_set():
            started = time.perf_counter()
            httpx.get(f"{base}/health", timeout=120)
            latencies.append((time.perf_counter() - started) * 1000)
            time.sleep(0.02)

    poller = threading.Thread(target=poll)
    poller.start()
    work()
    stop.set()
    poller.join()
    return latencies


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=20_000)
    parser.add_argument("--skip-health", action="store_true")
    args = parser.parse_args()
    parse_table(args.records)
    bomb_table()
    if not args.skip_health:
        health_during_cjk()


if __name__ == "__main__":
    main()
