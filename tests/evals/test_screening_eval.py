"""The screening evaluation runs end to end and its metrics are right on known inputs."""

from __future__ import annotations

from pathlib import Path

import pytest

from evals.screening_recall import main, metrics

DATA = Path(__file__).resolve().parents[1] / "fixtures" / "datasets"


def test_metrics_on_a_known_ranking() -> None:
    labels = [1, 0, 1, 0, 0, 0, 0, 0, 0, 1]
    scores = [5.0, 4.0, 4.5, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 3.0]
    m = metrics(labels, scores)
    assert m["@100"]["threshold"] == 3.0 and m["@100"]["missed"] == 0
    assert m["@100"]["specificity"] == pytest.approx(6 / 7)
    assert m["wss@95"] == pytest.approx(
        (10 - 4) / 10 - 0.05
    )  # all 3 includes found after 4 records


def test_runs_against_fake_server(capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        main(
            [
                "--fake",
                "--data-dir",
                str(DATA),
                "--dataset",
                "cdss_ro_2024",
                "--limit",
                "30",
                "--model",
                "gpt-4.1-mini",
                "--repetitions",
                "3",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "30 records, 8 includes" in out and "figures mean nothing" in out
    assert "| LLM mean |" in out and "| TF-IDF baseline |" in out
