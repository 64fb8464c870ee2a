"""Scoring modes: independent samples, or the score distribution of one answer read from its
token log-probabilities; and the prompt-cache order of a paper's repetitions."""

from __future__ import annotations

import math
from typing import Any

import pytest
from fastapi.testclient import TestClient

from crystallise.screening.scoring import distribution_fields, score_distribution
from tests.fake_openai import FakeOpenAIServer
from tests.screening.test_screening_api import create, papers, wait


def _token(text: str, alts: dict[str, float] | None = None) -> dict[str, Any]:
    alts = alts or {text: 0.0}
    return {
        "token": text,
        "logprob": alts.get(text, 0.0),
        "top_logprobs": [{"token": t, "logprob": lp} for t, lp in alts.items()],
    }


def test_distribution_read_at_the_score_digit() -> None:
    alts = {"4": math.log(0.6), "5": math.log(0.3), "3": math.log(0.05), "x": math.log(0.05)}
    tokens = [_token('{"'), _token("score"), _token('":'), _token(" "), _token("4", alts)]
    probs = score_distribution([*tokens, _token("}")])
    assert probs is not None
    assert probs == pytest.approx([0, 0, 0.05 / 0.95, 0.6 / 0.95, 0.3 / 0.95])
    # " 4" and "4}" spell the score too
    joined = [_token('{"score":'), _token(" 4", {" 4": -0.1, "2}": -2.4})]
    two, four = math.exp(-2.4), math.exp(-0.1)
    assert score_distribution(joined) == pytest.approx(
        [0, two / (two + four), 0, four / (two + four), 0]
    )
    fields = distribution_fields({"id": "p", "abstract": "x"}, probs)
    assert fields.scores == [4] and fields.scoring == "distribution"
    expected = sum((i + 1) * p for i, p in enumerate(probs))
    assert fields.mean_score == pytest.approx(expected, abs=1e-4)
    assert fields.max_score == 5 and fields.score_spread == 1
    stored = fields.stored()  # what the store keeps: the integers stay integers
    assert stored["scores"] == [4] and isinstance(stored["scores"][0], int)
    assert stored["score_1"] == 4 and "reasoning" not in stored


def test_no_distribution_without_logprobs_or_digits() -> None:
    assert score_distribution(None) is None
    assert score_distribution([]) is None
    # a digit that is not the score
    assert score_distribution([_token('{"n":'), _token("4")]) is None
    # a grammar-constrained server (llama.cpp) reports unconstrained alternatives ("0", a
    # line break): only 1-5 could be written there, so the distribution is over those
    raw = {"1": math.log(0.35), "0": math.log(0.26), "\n": math.log(0.2), "2": math.log(0.09)}
    probs = score_distribution([_token('{"score": '), _token("1", raw)])
    assert probs == pytest.approx([0.35 / 0.44, 0.09 / 0.44, 0, 0, 0])


def test_distribution_scoring_one_call_per_paper(
    client: TestClient, fake: FakeOpenAIServer
) -> None:
    job_id = create(client, model="gpt-4.1-mini", scoring="distribution", repetitions=5)
    body = wait(client, job_id)
    assert body["status"] == "completed", body
    label_calls = [
        r["body"] for r in fake.requests() if "LabelOutput" in str(r["body"].get("response_format"))
    ]
    assert len(label_calls) == 12  # one per paper, not 5
    assert all(
        r["logprobs"] is True and r["top_logprobs"] == 20 and "n" not in r for r in label_calls
    )
    for result in body["results"]:
        assert result["scoring"] == "distribution"
        probs = result["score_distribution"]
        assert len(probs) == 5 and sum(probs) == pytest.approx(1, abs=1e-3)
        assert result["scores"] == [max(range(5), key=lambda i: probs[i]) + 1]
        assert 1 <= result["final_score"] <= 5 and result["score_sd"] >= 0
        assert result["reasoning"]
    assert body["usage"]["scoring"] == "distribution"
    assert body["usage"]["distribution_fallbacks"] == 0
    # the reasoning prompt states the distribution it was given
    reasoning = [r for r in fake.requests() if "P(score = 1..5)" in str(r["body"]["messages"])]
    assert len(reasoning) == 12
    # the methods paragraph says how records were rated
    provenance = client.get(f"/v1/screening/jobs/{job_id}/provenance").json()
    assert provenance["parameters"]["scoring"] == "distribution"
    assert "log-probabilities" in provenance["methods"]
    assert "5 independent repetitions per record" not in provenance["methods"]


def test_distribution_on_a_grammar_constrained_server(
    client: TestClient, fake: FakeOpenAIServer
) -> None:
    """llama.cpp reports unconstrained alternatives at the score digit (most of the mass on
    "0" and line breaks): papers still get their distribution over 1-5."""
    fake.configure(dialect="llamacpp")
    job_id = create(client, model="gpt-4.1-mini", scoring="distribution", repetitions=3)
    body = wait(client, job_id)
    assert body["status"] == "completed", body
    assert {r["scoring"] for r in body["results"]} == {"distribution"}
    assert body["usage"]["distribution_fallbacks"] == 0
    for result in body["results"]:
        assert sum(result["score_distribution"]) == pytest.approx(1, abs=1e-3)


def test_distribution_falls_back_to_samples_without_logprobs(
    client: TestClient, fake: FakeOpenAIServer
) -> None:
    """A server that refuses logprobs: the profile drops them, papers are sampled, and each
    result and the job's usage say so."""
    fake.configure(reject_params=["logprobs"])
    job_id = create(client, model="gpt-4.1-mini", scoring="distribution", repetitions=3)
    body = wait(client, job_id)
    assert body["status"] == "completed", body
    assert {r["scoring"] for r in body["results"]} == {"samples"}
    assert all(len(r["scores"]) == 3 for r in body["results"])
    assert body["usage"]["distribution_fallbacks"] == 12


def test_distribution_refused_for_a_model_without_logprobs(client: TestClient) -> None:
    for path, extra in (
        ("/v1/screening/jobs", {"papers": papers(2)}),
        ("/v1/screening/estimate", {"papers_count": 100}),
    ):
        response = client.post(
            path, json={"model": "gpt-5-nano", "scoring": "distribution", **extra}
        )
        assert response.status_code == 400, response.text
        assert "scoring" in response.text and "gpt-5-nano" in response.text
    bad = client.post("/v1/screening/estimate", json={"papers_count": 5, "scoring": "votes"})
    assert bad.status_code in (400, 422) and "scoring" in bad.text


def test_null_options_mean_their_defaults(client: TestClient) -> None:
    response = client.post(
        "/v1/screening/jobs",
        json={"papers": papers(1), "scoring": None, "batch": None, "mock": True},
    )
    assert response.status_code == 200, response.text
    estimate = client.post(
        "/v1/screening/estimate", json={"papers_count": 3, "scoring": None, "batch": None}
    )
    assert estimate.status_code == 200, estimate.text


def test_estimate_prices_the_scoring_mode(client: TestClient) -> None:
    base = {"papers_count": 1000, "model": "gpt-4.1-mini", "repetitions": 5, "criteria_count": 5}
    samples = client.post("/v1/screening/estimate", json=base).json()
    dist = client.post("/v1/screening/estimate", json={**base, "scoring": "distribution"}).json()
    assert dist["estimated_output_tokens"] < samples["estimated_output_tokens"]
    assert dist["estimated_cost_usd"] < samples["estimated_cost_usd"]
    assert any("distribution" in a for a in dist["assumptions"])


def test_repetitions_after_the_first_read_the_paper_from_the_cache(
    client: TestClient, fake: FakeOpenAIServer
) -> None:
    """gpt-5-nano takes no n: a paper's first answer goes alone, so its other repetitions find
    the paper's whole prompt in the (simulated) prompt cache."""
    long = [
        {**p, "abstract": p["abstract"] + " Methods and outcomes were reported in detail." * 40}
        for p in papers(12)
    ]
    job_id = create(client, model="gpt-5-nano", repetitions=4, papers=long)
    body = wait(client, job_id)
    assert body["status"] == "completed", body
    label = [r for r in fake.requests() if "LabelOutput" in str(r["body"].get("response_format"))]
    assert len(label) == 48
    by_paper: dict[str, list[int]] = {}
    for r in label:
        by_paper.setdefault(r["body"]["messages"][-1]["content"], []).append(
            r["usage"]["cached_tokens"]
        )
    for cached in by_paper.values():  # the first misses the paper; the other three hit it
        first, *rest = sorted(cached)
        assert len(set(rest)) == 1 and rest[0] > first >= 0
    assert body["usage"]["cached_input_tokens"] >= 12 * 3 * 1024


def test_estimate_learns_hidden_reasoning_from_completed_jobs(
    client: TestClient, fake: FakeOpenAIServer
) -> None:
    """Before any job the estimate assumes the allowance; after a completed job it uses the
    reasoning tokens per answer the model billed (here 20, the fake's setting)."""
    base = {"papers_count": 10_000, "repetitions": 5, "criteria_count": 8}
    before = client.post("/v1/screening/estimate", json=base).json()
    assert any("an allowance" in a for a in before["assumptions"]), before
    fake.configure(reasoning_tokens=20)
    body = wait(client, create(client, repetitions=5))  # default model: gpt-5-nano
    assert body["status"] == "completed", body
    answers = 12 * 5 + 12 + 1  # labels, reasoning, one assignment batch
    assert body["usage"]["reasoning_tokens"] == 20 * answers
    after = client.post("/v1/screening/estimate", json=base).json()
    assert any(
        a.startswith("20 hidden reasoning tokens per answer, as this model billed")
        for a in after["assumptions"]
    ), after
    assert after["estimated_cost_usd"] < before["estimated_cost_usd"]
    assert before["estimated_output_tokens"] - after["estimated_output_tokens"] == pytest.approx(
        (96 - 20) * (10_000 * 5 + 10_000 + 400), rel=0.001
    )
