"""Hostile inputs through HTTP against `crystallise serve` on its defaults (issue 23).

One real server (SQLite in a job process, mock mode, no keys) takes every case the security
review found: each must be a clear 4xx naming the problem, or a correct answer; never a 500,
a dropped connection, a hang or a frozen event loop; every error body carries the request id.
"""

from __future__ import annotations

import io
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from openpyxl import load_workbook

from crystallise.records.parse import parse_records
from tests.durability.test_crash_recovery import Proc, _env
from tests.durability.test_job_process import wait_healthy
from tests.fake_openai import FakeOpenAIServer, free_port
from tests.records.hostile import HOSTILE_TITLES, text_cases, xlsx_cases


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    tmp = tmp_path_factory.mktemp("hostile")
    fake = FakeOpenAIServer().start()
    env = _env(tmp, fake)
    for name in ("CRYSTALLISE_MAX_CONCURRENT_REQUESTS", "CRYSTALLISE_RETRY_DELAYS"):
        env.pop(name)  # defaults
    port = free_port()
    proc = Proc(["serve", "--port", str(port)], env, tmp / "serve.log")
    base = f"http://127.0.0.1:{port}"
    wait_healthy(base, tmp / "serve.log")
    yield base
    proc.stop()
    fake.stop()


def _no_5xx(response: httpx.Response) -> httpx.Response:
    assert response.status_code < 500, response.text[:500]
    if response.status_code >= 400:
        body = response.json()
        assert body["request_id"] == response.headers["x-request-id"], body
    return response


def _upload(base: str, data: bytes, name: str, **form: Any) -> httpx.Response:
    files: dict[str, Any] = {"file": (name, data)}
    return _no_5xx(
        httpx.post(f"{base}/v1/records/parse", files=files, data=form or None, timeout=60)
    )


@pytest.mark.parametrize("case", [k for k in xlsx_cases()])
def test_broken_or_bomb_workbooks_are_4xx_or_read(served: str, case: str) -> None:
    started = time.monotonic()
    response = _upload(served, xlsx_cases()[case], "refs.xlsx")
    assert time.monotonic() - started < 10, case
    if case == "bomb_150mb_cell":
        assert response.status_code == 413 and "inflates" in response.json()["detail"]
    elif case == "dimension_xfd1048576":
        assert response.status_code == 200 and response.json()["count"] == 1
    else:
        assert response.status_code == 400, response.text
        assert "XLSX" in response.json()["detail"]


@pytest.mark.parametrize("case", list(text_cases()))
def test_hostile_text_files_are_4xx_or_read_in_time(served: str, case: str) -> None:
    data, _ = text_cases()[case]
    started = time.monotonic()
    response = _upload(served, data, "refs.txt" if case.startswith("utf16") else "refs")
    assert time.monotonic() - started < 10, case
    if case in ("utf16_odd_length", "bibtex_5000_nested_braces"):
        assert response.status_code == 400
    else:
        assert response.status_code == 200


def test_parsed_records_are_accepted_as_they_are(served: str) -> None:
    """NUL is removed on import, so the parsed records go on to a job unchanged."""
    data = b"TY  - JOUR\nTI  - A\x00B title\nAB  - text\x00 here\nER  - \n"
    records = _upload(served, data, "refs.ris").json()["records"]
    assert records[0]["title"] == "AB title"
    papers = [{"id": r["id"], "title": r["title"], "abstract": r["abstract"]} for r in records]
    job = httpx.post(f"{served}/v1/screening/jobs", json={"papers": papers, "mock": True})
    assert job.status_code in (200, 201, 202), job.text


@pytest.mark.parametrize("encoding", ["unicode_escape", "utf-7"])
def test_encodings_that_yield_lone_surrogates(served: str, encoding: str) -> None:
    data = b"TY  - JOUR\nTI  - bad \\ud800 +2AA- surrogate\nER  - \n"
    response = _no_5xx(
        httpx.post(f"{served}/v1/records/parse?encoding={encoding}", content=data, timeout=30)
    )
    assert response.status_code == 200
    assert "\ufffd" in response.json()["records"][0]["title"]


def test_an_encoding_field_sent_as_a_file(served: str) -> None:
    files = {"file": ("r.ris", b"TY  - JOUR\nTI  - x\nER  - \n"), "encoding": ("e", b"utf-8")}
    response = _no_5xx(httpx.post(f"{served}/v1/records/parse", files=files))
    assert response.status_code == 400 and "encoding" in response.json()["detail"]


@pytest.mark.parametrize(
    "path", ["/v1/records/parse", "/v1/screening/jobs/x/cancel", "/v1/screening/jobs/x/retry"]
)
def test_json_nested_1000_deep(served: str, path: str) -> None:
    body = "[" * 1000 + "]" * 1000
    response = _no_5xx(
        httpx.post(served + path, content=body, headers={"content-type": "application/json"})
    )
    assert response.status_code in (400, 404)


def test_decision_endpoints_with_degenerate_input(served: str) -> None:
    records = [{"id": f"r{i}", "title": "a b c", "label": i % 2} for i in range(6)]
    records.append({"id": "u", "title": "x y"})
    response = _no_5xx(httpx.post(f"{served}/v1/screening/prioritize", json={"records": records}))
    assert response.status_code == 400 and "records" in response.json()["detail"]
    stopping = {"screened": [{"id": "a", "label": 1}], "total_records": 10}
    response = _no_5xx(
        httpx.post(f"{served}/v1/screening/stopping", json={**stopping, "target_recall": 1e-300})
    )
    assert response.status_code == 400 and "target_recall" in response.json()["detail"]
    rules = [f"k_of_n:{k}" for k in range(1, 200_000)]
    calibrate = {"records": [{"id": "a", "final_score": 3, "label": 1}], "rules": rules}
    response = _no_5xx(httpx.post(f"{served}/v1/screening/calibrate", json=calibrate))
    assert response.status_code == 400 and "rules" in response.json()["detail"]


def test_non_ascii_provider_key(served: str) -> None:
    response = _no_5xx(
        httpx.post(
            f"{served}/v1/criteria/picos",
            json={"project_description": "Does exercise help depression?"},
            headers={"X-OpenAI-API-Key": "sk-é-key".encode()},
        )
    )
    assert response.status_code == 400 and "X-OpenAI-API-Key" in response.json()["detail"]


def test_unknown_service_id_and_unknown_route(served: str) -> None:
    """GET of an unknown service id keeps the contract (a default config, 200: the
    reference says so); writing one is a 404; an unknown route is a 404 with a request id."""
    assert _no_5xx(httpx.get(f"{served}/v1/config/services/anything")).status_code == 200
    response = _no_5xx(httpx.put(f"{served}/v1/config/services/anything", json={}))
    assert response.status_code == 404 and "anything" in response.json()["detail"]
    assert _no_5xx(httpx.get(f"{served}/v1/nothing-here")).status_code == 404


def test_validation_errors_carry_the_request_id(served: str) -> None:
    response = _no_5xx(httpx.post(f"{served}/v1/screening/jobs", json={"papers": []}))
    assert response.status_code == 400


def _wait(base: str, job_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        body = httpx.get(f"{base}/v1/screening/jobs/{job_id}").json()
        if body["status"] in ("completed", "failed", "cancelled"):
            return dict(body)
        time.sleep(0.2)
    raise AssertionError("job did not finish")


@pytest.fixture(scope="module")
def hostile_job(served: str) -> str:
    papers = [
        {"id": f"p{i}", "title": title, "abstract": f"Abstract {i}.\nSecond line."}
        for i, title in enumerate(HOSTILE_TITLES)
    ]
    papers.append({"id": "=1+1", "title": "An ordinary title", "abstract": "@SUM(A1)"})
    created = httpx.post(f"{served}/v1/screening/jobs", json={"papers": papers, "mock": True})
    job_id = str(created.json()["job_id"])
    assert _wait(served, job_id)["status"] == "completed"
    return job_id


DECISIONS = ("crystallise:include", "crystallise:exclude")


def _export(base: str, job_id: str, fmt: str) -> bytes:
    response = httpx.get(f"{base}/v1/screening/jobs/{job_id}/export?format={fmt}", timeout=30)
    assert response.status_code == 200, response.text
    return response.content


def test_xlsx_export_has_no_formula(served: str, hostile_job: str) -> None:
    book = load_workbook(io.BytesIO(_export(served, hostile_job, "xlsx")))
    cells = [c for row in book.active.iter_rows() for c in row if c.value is not None]
    assert not [c.coordinate for c in cells if c.data_type == "f"]
    titles = {c.value for c in cells if c.column == 2}
    assert HOSTILE_TITLES[0] in titles  # kept as the text it is, typed as text
    risky = [c for c in cells if isinstance(c.value, str) and c.value.startswith("=")]
    assert risky and all(c.data_type == "s" and c.quotePrefix for c in risky)


def test_csv_export_neutralises_formula_starts(served: str, hostile_job: str) -> None:
    import csv

    text = _export(served, hostile_job, "csv").decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(text)))
    cells = [cell for row in rows for cell in row]
    assert not [c for c in cells if c[:1] in ("=", "+", "-", "@", "\t", "\r")]
    assert "'" + HOSTILE_TITLES[0] in cells and "'=1+1" in cells


def test_ris_export_reimports_as_exactly_the_records_exported(
    served: str, hostile_job: str
) -> None:
    parsed = parse_records(_export(served, hostile_job, "ris"))
    assert parsed.count == len(HOSTILE_TITLES) + 1
    assert [r.id for r in parsed.records] == [f"p{i}" for i in range(len(HOSTILE_TITLES))] + [
        "=1+1"
    ]
    for record, title in zip(parsed.records, HOSTILE_TITLES, strict=False):
        assert record.title.split() == title.split(), record.title  # breaks folded only
        decisions = [k for k in record.keywords if k in DECISIONS]
        assert len(decisions) == 1, record.keywords


def test_health_answers_while_long_cjk_papers_are_submitted(served: str) -> None:
    """Token counting is linear and off the event loop: /health stays fast meanwhile."""
    cjk = "".join(chr(0x4E00 + (i * 7919) % 20000) for i in range(100_000))
    papers = [{"id": f"c{i}", "title": "x" * 30_000, "abstract": cjk} for i in range(10)]
    stop = threading.Event()
    latencies: list[float] = []

    def poll() -> None:
        while not stop.is_set():
            started = time.monotonic()
            assert httpx.get(f"{served}/health", timeout=10).status_code == 200
            latencies.append(time.monotonic() - started)
            time.sleep(0.02)

    poller = threading.Thread(target=poll)
    poller.start()
    try:
        body = json.dumps({"papers": papers, "mock": True})
        response = httpx.post(
            f"{served}/v1/screening/jobs",
            content=body,
            headers={"content-type": "application/json"},
            timeout=60,
        )
    finally:
        stop.set()
        poller.join()
    assert response.status_code in (200, 201, 202), response.text[:300]
    assert latencies and max(latencies) < 2.0, max(latencies)


def test_readiness_checks_the_sqlite_files_folder(tmp_path: Path) -> None:
    """A database outside a data folder that does not exist is ready (it was 503)."""
    fake = FakeOpenAIServer().start()
    db_dir = tmp_path / "elsewhere"
    db_dir.mkdir()
    env = _env(tmp_path / "missing-data-dir", fake)
    env["CRYSTALLISE_DATABASE_URL"] = f"sqlite:///{db_dir / 'c.db'}"
    port = free_port()
    proc = Proc(["serve", "--port", str(port)], env, tmp_path / "serve.log")
    try:
        base = f"http://127.0.0.1:{port}"
        wait_healthy(base, tmp_path / "serve.log")
        ready = httpx.get(f"{base}/health/ready", timeout=10)
        assert ready.status_code == 200, ready.text
        assert ready.json()["checks"]["disk"] == "ok"
    finally:
        proc.stop()
        fake.stop()
