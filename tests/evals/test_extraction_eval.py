"""The TrialSieve evaluation script runs end to end (against the fake server: figures are noise)."""

from __future__ import annotations

from pathlib import Path

import pytest

from evals.extraction_trialsieve import main, parse_number

SAMPLE = Path(__file__).resolve().parents[1] / "fixtures" / "trialsieve_sample.csv"


def test_parse_number() -> None:
    assert (
        parse_number("117") == 117
        and parse_number("Thirty-seven") == 37
        and parse_number("1,024") == 1024
    )


def test_runs_against_fake_server(capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        main(
            [
                "--fake",
                "--gold",
                str(SAMPLE),
                "--limit",
                "5",
                "--split",
                "validation",
                "--model",
                "gpt-4.1-mini",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "5 records" in out and "figures mean nothing" in out
    for field in ("sample_size", "condition", "interventions", "evidence quotes"):
        assert f"| {field} |" in out
