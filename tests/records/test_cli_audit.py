"""The audit from the command line (issue 25, item 5): `crystallise screen --labels` prints
the agreement and writes it beside the output; `crystallise prisma` draws the flow of a job
(by id, embedded store) or of a file Crystallise exported; bad labels are exit 2 before work."""

from __future__ import annotations

import json
from pathlib import Path
from xml.etree import ElementTree

from crystallise.records.parse import parse_records
from tests.fake_openai import FakeOpenAIServer
from tests.records.test_cli import _cli, _env, _ris

CRITERIA = "include:\n  - Randomised trials of exercise for depression\nthreshold: 3\n"


def test_labels_agreement_and_prisma(tmp_path: Path, fake: FakeOpenAIServer) -> None:
    (tmp_path / "criteria.yaml").write_text(CRITERIA)
    (tmp_path / "refs.ris").write_text(_ris(12))
    rows = [f"ref{i},ann,{int(i % 3 == 0)}" for i in range(12)]
    rows += [f"ref{i},bob,{int(i % 3 == 0 or i == 4)}" for i in range(12)]
    (tmp_path / "labels.csv").write_text("id,reviewer,label\n" + "\n".join(rows) + "\n")
    env = _env(tmp_path, fake)
    base = ["screen", "refs.ris", "--criteria", "criteria.yaml", "--mock", "--yes"]
    done = _cli([*base, "--labels", "labels.csv", "--out", "out.ris"], env, tmp_path)
    assert done.returncode == 0, done.stderr
    assert "Agreement with the reviewers" in done.stderr and "Cohen's kappa" in done.stderr
    answer = json.loads((tmp_path / "out.agreement.json").read_text())
    assert [p["raters"] for p in answer["pairs"]][-1] == ["ann", "bob"]
    assert answer["ai_vs_consensus"]["conflicts"] == 1

    from_file = _cli(["prisma", "out.ris", "--out", "flow.svg"], env, tmp_path)
    assert from_file.returncode == 0, from_file.stderr
    svg = ElementTree.parse(tmp_path / "flow.svg").getroot()
    text = " ".join(t.text or "" for t in svg.iter() if t.text)
    assert "Records screened (n = 12)" in text

    from_job = _cli(["prisma", answer["job_id"], "--out", "counts.json"], env, tmp_path)
    assert from_job.returncode == 0, from_job.stderr
    counts = json.loads((tmp_path / "counts.json").read_text())
    assert counts["records_screened"] == 12 == counts["included"] + counts["excluded"]

    (tmp_path / "bad.csv").write_text("id,reviewer,label\nref1,ann,yes\n")
    bad = _cli([*base, "--labels", "bad.csv", "--out", "o2.csv"], env, tmp_path)
    assert bad.returncode == 2 and "label 0 or 1" in " ".join(bad.stderr.split())
    assert not (tmp_path / "o2.csv").exists()


def test_update_of_reuses_and_reports(tmp_path: Path, fake: FakeOpenAIServer) -> None:
    """Issue 26, item 4: an updated export screens only what is new; the summary says so."""
    (tmp_path / "criteria.yaml").write_text(CRITERIA)
    (tmp_path / "refs.ris").write_text(_ris(12))
    env = _env(tmp_path, fake)
    base = ["--criteria", "criteria.yaml", "--yes", "--repetitions", "1"]
    first = _cli(["screen", "refs.ris", *base], env, tmp_path)
    assert first.returncode == 0, first.stderr
    calls_first = fake.state.calls["chat"]
    updated = _ris(16).replace("ID  - ref", "ID  - v2-")  # same records (and 4 new), new ids
    (tmp_path / "refs_v2.ris").write_text(updated)
    second = _cli(
        ["screen", "refs_v2.ris", *base, "--update-of", "refs.screened.ris"], env, tmp_path
    )
    assert second.returncode == 0, second.stderr
    said = " ".join(second.stderr.split())
    assert "reused 12, screened 4 new, duplicates 12" in said, said
    assert fake.state.calls["chat"] - calls_first < calls_first  # 4 papers, not 16
    assert len(parse_records((tmp_path / "refs_v2.screened.ris").read_bytes()).records) == 16
