"""Import and export at review scale (issue 16): parse a 20,000-record RIS file, screen it in
mock mode on the embedded SQLite store, then export the job in each format, measuring time and
the peak of Python memory while exporting (tracemalloc), to show exports stream.

    uv run --frozen python -m bench.records_io [--records 20000]

Real titles and abstracts (nagtegaal_2019, repeated with distinct ids), RIS with authors,
year, DOI and keywords. Settings are the defaults apart from a temporary data directory.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

from bench.screening_throughput import load_papers


def _ris(n: int) -> str:
    base = load_papers(2000)
    lines: list[str] = []
    for i in range(n):
        paper = base[i % len(base)]
        lines += ["TY  - JOUR", f"ID  - rec{i}", f"TI  - {paper['title']}", "AU  - Müller, Anna",
                  "AU  - Ødegaard, Bjørn", f"PY  - {1990 + i % 35}", f"DO  - 10.5555/bench.{i}",
                  f"AB  - {paper['abstract']}", "KW  - bench", "ER  - ", ""]  # fmt: skip
    return "\n".join(lines)


async def _screen(data_dir: Path, records: list[dict[str, Any]]) -> tuple[Any, Any]:
    from crystallise.config.settings import Settings
    from crystallise.jobs.start import start_services, wait_for_job
    from crystallise.jobs.submit import Submission, submit_screening
    from crystallise.screening.schemas import ScreeningRequest

    settings = Settings(_env_file=None, data_dir=data_dir, job_queue="inprocess")  # type: ignore[call-arg]
    services = await start_services(settings)
    body = ScreeningRequest(papers=records, criteria=[{"type": "include", "value": "trials"}],  # type: ignore[arg-type]
                            mock=True)  # fmt: skip
    row = await submit_screening(services, body, Submission())
    row = await wait_for_job(services, "screening", row.id, timeout=600)
    return services, row


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=20_000)
    args = parser.parse_args()
    from crystallise.records.parse import parse_records
    from crystallise.records.service import export_job

    text = _ris(args.records)
    t0 = time.perf_counter()
    parsed = parse_records(text.encode())
    parse_s = time.perf_counter() - t0
    print(f"parse RIS: {parsed.count} records, {len(text) / 1e6:.1f} MB in {parse_s:.2f} s")
    records = [r.model_dump(exclude={"position", "line"}) for r in parsed.records]
    with tempfile.TemporaryDirectory() as tmp:
        services, row = asyncio.run(_screen(Path(tmp), records))
        print(f"mock screening job: {row.status}, {row.item_count} papers")
        for fmt in ("ris", "csv", "jsonl", "xlsx"):
            t0 = time.perf_counter()
            size = sum(len(c) for c in export_job(services.jobs, "screening", row, fmt).chunks)  # type: ignore[arg-type]
            seconds = time.perf_counter() - t0
            tracemalloc.start()  # a second pass, traced: tracing slows it several times
            for _ in export_job(services.jobs, "screening", row, fmt).chunks:  # type: ignore[arg-type]
                pass
            peak = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
            print(f"export {fmt:5}: {size / 1e6:6.1f} MB in {seconds:5.2f} s, "
                  f"peak Python memory {peak / 1e6:5.1f} MB")  # fmt: skip
        asyncio.run(services.aclose())


if __name__ == "__main__":
    main()
