"""The researcher's CLI, run as a user runs it (a real process on the embedded SQLite store):
screen a file, kill it halfway and run it again, spend only after confirming, run on a server."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from crystallise.db.engine import make_engine, make_session_factory
from crystallise.db.jobs import JobStore
from crystallise.records.parse import parse_records
from tests.durability.test_crash_recovery import Proc, _env
from tests.durability.test_job_process import wait_healthy
from tests.fake_openai import FakeOpenAIServer, free_port

FIXTURES = Path(__file__).parent / "fixtures"
CRITERIA = """questions:
  - Does exercise reduce depression in older adults?
include:
  - Randomised trials of exercise for depression
exclude:
  - Animal studies
threshold: 3
"""


def _cli(
    args: list[str], env: dict[str, str], cwd: Path, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "crystallise.cli", *args],
        env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL,
    )  # fmt: skip


def _ris(n: int) -> str:
    lines = []
    for i in range(n):
        topic = "exercise for depression randomised" if i % 3 == 0 else "sleep cohort"
        lines += ["TY  - JOUR", f"ID  - ref{i}", f"TI  - Study {i} of {topic}",
                  f"AU  - Ünal, Ayşe {i}", f"PY  - {2000 + i % 20}",
                  f"AB  - Abstract {i}: a {topic} trial in older adults.", "ER  - ", ""]  # fmt: skip
    return "\r\n".join(lines)


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    (tmp_path / "criteria.yaml").write_text(CRITERIA)
    (tmp_path / "refs.ris").write_text(_ris(12))
    return tmp_path


def _decisions(path: Path) -> dict[str, str]:
    records = parse_records(path.read_bytes()).records
    found: dict[str, str] = {}
    for record in records:
        assert record.id not in found, f"{record.id} twice"
        tags = [
            k
            for k in record.source["keywords"]
            if k in ("crystallise:include", "crystallise:exclude")
        ]
        assert len(tags) == 1, record.source
        found[record.id] = tags[0].split(":")[1]
    return found


def test_screen_a_ris_file_in_mock_mode_and_rerun_it(workdir: Path, fake: FakeOpenAIServer) -> None:
    env = _env(workdir, fake)
    first = _cli(["screen", "refs.ris", "--criteria", "criteria.yaml", "--mock"], env, workdir)
    assert first.returncode == 0, first.stderr
    out = workdir / "refs.screened.ris"
    decisions = _decisions(out)
    assert sorted(decisions) == sorted(f"ref{i}" for i in range(12))
    assert "Read 12 records" in first.stderr and "decision: include" in first.stderr
    again = _cli(
        ["screen", "refs.ris", "--criteria", "criteria.yaml", "--mock", "--out", "o.csv"],
        env,
        workdir,
    )
    assert again.returncode == 0 and "(finished)" in again.stderr  # the same job, not a new one
    assert (workdir / "o.csv").read_text(encoding="utf-8-sig").count("\n") == 13


def test_killed_halfway_and_rerun_every_record_exactly_once(
    workdir: Path, fake: FakeOpenAIServer
) -> None:
    (workdir / "big.ris").write_text(_ris(500))
    env = _env(workdir, fake, CRYSTALLISE_MOCK_DELAY_S="0.4")
    args = ["screen", str(workdir / "big.ris"), "--criteria", str(workdir / "criteria.yaml"),
            "--mock", "--out", str(workdir / "big.out.ris")]  # fmt: skip
    proc = Proc(args, env, workdir / "first.log")
    store = None
    deadline = time.monotonic() + 90
    done = 0
    while time.monotonic() < deadline:
        time.sleep(0.1)
        if store is None and (workdir / "crystallise.db").exists():
            store = JobStore(
                make_session_factory(make_engine(f"sqlite:///{workdir / 'crystallise.db'}"))
            )
        try:
            jobs = store.list_jobs("screening") if store else []
            done = store.count_items(jobs[0].id, ["done"]) if jobs else 0
        except Exception:
            continue  # the database is still being created
        if done >= 100:
            break
    proc.kill()  # SIGKILL: no chance to clean up
    proc.handle.close()
    assert 100 <= done < 500, f"{done} done before the kill"
    assert not (workdir / "big.out.ris").exists()
    second = _cli(args, env, workdir)
    assert second.returncode == 0, second.stderr
    assert "(resumed)" in second.stderr
    decisions = _decisions(workdir / "big.out.ris")
    assert sorted(decisions) == sorted(f"ref{i}" for i in range(500))
    assert set(decisions.values()) == {"include", "exclude"}


def test_real_run_confirms_the_cost_first(workdir: Path, fake: FakeOpenAIServer) -> None:
    env = _env(workdir, fake)
    args = [
        "screen",
        "refs.ris",
        "--criteria",
        "criteria.yaml",
        "--model",
        "gpt-4.1-mini",
        "--repetitions",
        "2",
    ]
    refused = _cli([*args, "--confirm-above", "0"], env, workdir)
    assert refused.returncode == 2 and "add --yes" in refused.stderr
    assert not fake.state.calls and not (workdir / "refs.screened.ris").exists()
    ran = _cli([*args, "--confirm-above", "0", "--yes", "--out", "real.csv"], env, workdir)
    assert ran.returncode == 0, ran.stderr
    assert "Estimated cost" in ran.stderr and fake.state.calls
    assert (workdir / "real.csv").read_text(encoding="utf-8-sig").count("\n") == 13


def test_screen_on_a_running_server_with_url(workdir: Path, fake: FakeOpenAIServer) -> None:
    port = free_port()
    env = _env(workdir, fake)
    server = Proc(["serve", "--port", str(port)], env, workdir / "serve.log")
    base = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(base, workdir / "serve.log")
        args = [
            "screen",
            "refs.ris",
            "--criteria",
            "criteria.yaml",
            "--mock",
            "--url",
            base,
            "--out",
            "r.xlsx",
        ]
        ran = _cli(args, {**env, "CRYSTALLISE_DATA_DIR": str(workdir / "elsewhere")}, workdir)
        assert ran.returncode == 0, ran.stderr
        assert parse_records((workdir / "r.xlsx").read_bytes()).count == 12
        assert len(httpx.get(f"{base}/v1/screening/jobs").json()) == 1  # it ran on the server
    finally:
        server.stop()


def test_criteria_check_and_clear_errors(workdir: Path, fake: FakeOpenAIServer) -> None:
    env = _env(workdir, fake)
    check = _cli(["criteria", "check", "exercise and depression", "--mock"], env, workdir)
    assert check.returncode == 1 and "could_improve" in check.stdout
    (workdir / "bad.yaml").write_text("include: [unclosed\n")
    cases = [
        (["screen", "missing.ris", "--criteria", "criteria.yaml"], "missing.ris: cannot read it"),
        (
            ["screen", "refs.ris", "--criteria", "bad.yaml", "--mock"],
            "bad.yaml: not valid YAML (line",
        ),
        (
            ["screen", "refs.ris", "--criteria", "criteria.yaml", "--out", "x.pdf", "--mock"],
            "--out",
        ),
    ]
    for args, message in cases:
        ran = _cli(args, env, workdir)
        assert ran.returncode == 2 and message in " ".join(ran.stderr.split()), ran.stderr


def test_index_a_file_in_mock_mode(workdir: Path, fake: FakeOpenAIServer) -> None:
    (workdir / "fields.yaml").write_text(
        "fields:\n"
        "  - name: study_design\n    description: Type of study\n    data_type_primary: text\n"
        "  - name: sample_size\n    description: Participants\n    data_type_primary: number\n"
    )
    args = ["index", "refs.ris", "--fields", "fields.yaml", "--mock", "--out", "idx.csv"]
    ran = _cli(args, _env(workdir, fake), workdir)
    assert ran.returncode == 0, ran.stderr
    header, *rows = (workdir / "idx.csv").read_text(encoding="utf-8-sig").splitlines()
    assert header.startswith("record_id,title,indexing_status,study_design,study_design_confidence")
    assert len(rows) == 12
