"""The decision endpoints over HTTP: shapes, job-level calibrate, bad input (issue 15)."""

from __future__ import annotations

import random
import time

from fastapi.testclient import TestClient

from tests.conftest import make_settings


def _records(n: int = 3000, labelled: int = 1500, seed: int = 1) -> list[dict[str, object]]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        label = int(rng.random() < 0.1)
        scores = [min(5, max(1, round(rng.gauss(4 if label else 2, 0.8)))) for _ in range(3)]
        out.append({"id": f"r{i}", "scores": scores, "label": label if i < labelled else None})
    return out


def test_calibrate_returns_a_supported_threshold_and_a_methods_paragraph(
    client: TestClient,
) -> None:
    body = client.post("/v1/screening/calibrate", json={"records": _records()}).json()
    assert body["status"] == "ok" and body["rule"] in ("mean", "max")
    assert body["recall_lower_bound"] >= 0.95 and body["excluded_count"] > 1000
    assert 0 < body["workload_reduction"] < 1 and body["sample_size"] == 1500
    assert "Clopper-Pearson" in body["report"] and str(body["excluded_count"]) in body["report"]
    few = client.post("/v1/screening/calibrate", json={"records": _records(labelled=50)}).json()
    assert few["status"] == "insufficient_labels" and few["threshold"] is None
    assert few["labels_needed"] > 0 and "more randomly sampled labels" in few["report"]


def test_calibrate_k_of_n_rule_and_final_scores(client: TestClient) -> None:
    records = [
        {"id": r["id"], "final_score": sum(r["scores"]) / 3, "label": r["label"]}
        for r in _records()
    ]  # type: ignore[arg-type]
    body = client.post(
        "/v1/screening/calibrate", json={"records": records, "rules": ["k_of_n:2", "mean"]}
    ).json()
    assert body["status"] == "ok" and body["rules_considered"] == ["k_of_n:2", "mean"]


def test_bad_input_is_a_400_naming_the_problem(client: TestClient) -> None:
    rec = {"id": "a", "scores": [3], "label": 1}
    cases = [
        ({"records": [{**rec, "label": 2}]}, "label"),
        ({"records": [rec, rec]}, "duplicate ids"),
        ({"records": [rec], "target_recall": 1.0}, "target_recall"),
        ({"records": [rec], "confidence": 0}, "confidence"),
        ({"records": [rec], "rules": ["median"]}, "unknown rules"),
        ({"records": [{"id": "a", "label": 1}]}, "scores or final_score"),
    ]
    for body, words in cases:
        r = client.post("/v1/screening/calibrate", json=body)
        assert r.status_code == 400 and words in r.text, (body, r.text)
    r = client.post(
        "/v1/screening/stopping",
        json={"screened": [{"id": "a", "label": 1}, {"id": "b", "label": 0}], "total_records": 1},
    )
    assert r.status_code == 400 and "total_records" in r.text


def test_size_cap_applies(tmp_path: object) -> None:
    from crystallise.api.app import create_app

    with TestClient(create_app(make_settings(tmp_path, max_papers_per_job=10))) as c:
        r = c.post("/v1/screening/calibrate", json={"records": _records(20, 10)})
        assert r.status_code == 400 and "CRYSTALLISE_MAX_PAPERS_PER_JOB" in r.text


def test_job_level_calibrate_uses_the_stored_scores(client: TestClient) -> None:
    papers = [
        {
            "id": f"p{i}",
            "title": f"Physicians nudged {i}" if i % 5 == 0 else f"Mice {i}",
            "abstract": "Reminders for physicians" if i % 5 == 0 else "Rodent study",
        }
        for i in range(200)
    ]
    criteria = [{"name": "Population", "type": "include", "value": "physicians reminders nudged"}]
    job_id = client.post(
        "/v1/screening/jobs", json={"papers": papers, "criteria": criteria, "mock": True}
    ).json()["job_id"]
    deadline = time.monotonic() + 30
    while client.get(f"/v1/screening/jobs/{job_id}").json()["status"] != "completed":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    labels = {p["id"]: int(i % 5 == 0) for i, p in enumerate(papers)}
    body = client.post(f"/v1/screening/jobs/{job_id}/calibrate", json={"labels": labels}).json()
    assert body["total_records"] == 200 and body["sample_includes"] == 40
    assert "gpt-" in body["report"] or "mock" in body["report"]
    r = client.post(f"/v1/screening/jobs/{job_id}/calibrate", json={"labels": {"nope": 1}})
    assert r.status_code == 400 and "unknown record ids" in r.text
    r = client.post("/v1/screening/jobs/missing/calibrate", json={"labels": {"a": 1}})
    assert r.status_code == 404


def test_prioritize_ranks_include_like_records_first(client: TestClient) -> None:
    records = [
        {"id": "inc", "title": "Reminders for physicians", "abstract": "nudge trial", "label": 1},
        {"id": "exc", "title": "Mice liver", "abstract": "rodent model", "label": 0},
        {"id": "u1", "title": "Rodent kidney", "abstract": "mice model"},
        {"id": "u2", "title": "Physicians and reminders", "abstract": "a nudge"},
    ]
    body = client.post("/v1/screening/prioritize", json={"records": records}).json()
    assert [r["id"] for r in body["ranking"]] == ["u2", "u1"]
    assert body["trained_on"] == {"includes": 1, "excludes": 1}
    unlabelled = [{"id": f"s{s}", "score": s} for s in (2.0, 4.5, 3.0)]
    body = client.post("/v1/screening/prioritize", json={"records": unlabelled}).json()
    assert [r["id"] for r in body["ranking"]] == ["s4.5", "s3.0", "s2.0"]
    assert body["model"] == "llm_score"


def test_stopping_answers_with_its_test(client: TestClient) -> None:
    screened = [{"id": f"a{i}", "label": 1} for i in range(50)]
    screened += [{"id": f"b{i}", "label": 0} for i in range(1400)]
    body = client.post(
        "/v1/screening/stopping", json={"screened": screened, "total_records": 1460}
    ).json()
    assert body["safe_to_stop"] is True and body["p_value"] < 0.05
    assert body["includes_found"] == 50 and "hypergeometric" in body["method"]
    body = client.post(
        "/v1/screening/stopping", json={"screened": screened[:60], "total_records": 5000}
    ).json()
    assert body["safe_to_stop"] is False


def test_null_means_the_default(client: TestClient) -> None:
    body = {"records": _records(), "rules": None, "target_recall": None, "confidence": None}
    r = client.post("/v1/screening/calibrate", json=body)
    assert r.status_code == 200 and r.json()["rules_considered"] == ["mean", "max"]
    assert r.json()["target_recall"] == 0.95
    r = client.post(
        "/v1/screening/stopping",
        json={"screened": [{"id": "a", "label": 1}], "total_records": 5, "confidence": None},
    )
    assert r.status_code == 200 and r.json()["confidence"] == 0.95
