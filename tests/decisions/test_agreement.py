"""Agreement with human reviewers (issue 25, item 4): kappa, its CI, AC1 and Wilson CIs equal
an independent computation on fixed label sets, the degenerate cases, and the endpoint over
HTTP on a mock job (disagreements, report, 400s)."""

from __future__ import annotations

import math
import time

import pytest
from fastapi.testclient import TestClient

from crystallise.decisions.agreement import agreement, consensus, pair_agreement, wilson


def _by_hand(x: list[int], y: list[int]) -> tuple[float, float, float, float]:
    """Kappa, its SE and AC1 from the 2x2 table, written out."""
    n = len(x)
    a = sum(1 for u, v in zip(x, y, strict=True) if u == 1 and v == 1)
    d = sum(1 for u, v in zip(x, y, strict=True) if u == 0 and v == 0)
    b = sum(1 for u, v in zip(x, y, strict=True) if u == 1 and v == 0)
    c = n - a - b - d
    p_o = (a + d) / n
    p_e = ((a + b) * (a + c) + (c + d) * (b + d)) / n**2
    kappa = (p_o - p_e) / (1 - p_e)
    se = math.sqrt(p_o * (1 - p_o) / (n * (1 - p_e) ** 2))
    q = ((a + b) / n + (a + c) / n) / 2
    ac1 = (p_o - 2 * q * (1 - q)) / (1 - 2 * q * (1 - q))
    return kappa, se, ac1, p_o


def test_kappa_ci_and_ac1_equal_the_formulas() -> None:
    x = [1, 1, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 1, 0, 0, 0, 0, 0, 1]
    y = [1, 0, 0, 0, 1, 0, 1, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 1]
    pair = pair_agreement(
        "AI", {str(i): v for i, v in enumerate(x)}, "ann", {str(i): v for i, v in enumerate(y)}
    )
    kappa, se, ac1, p_o = _by_hand(x, y)
    assert pair.n == 20 and pair.percent_agreement == pytest.approx(p_o)
    assert pair.kappa == pytest.approx(kappa) and pair.ac1 == pytest.approx(ac1)
    assert pair.kappa_ci == pytest.approx((kappa - 1.959964 * se, kappa + 1.959964 * se))


def test_degenerate_cases() -> None:
    same = {str(i): 0 for i in range(10)}
    only_excludes = pair_agreement("a", same, "b", dict(same))
    assert only_excludes.kappa is None and only_excludes.kappa_ci is None  # undefined
    assert only_excludes.ac1 == pytest.approx(1.0) and only_excludes.percent_agreement == 1.0
    mixed = {str(i): i % 2 for i in range(10)}
    perfect = pair_agreement("a", mixed, "b", dict(mixed))
    assert perfect.kappa == pytest.approx(1.0) and perfect.kappa_ci == pytest.approx((1.0, 1.0))
    none = pair_agreement("a", {"x": 1}, "b", {"y": 1})
    assert none.n == 0 and none.kappa is None and none.ac1 is None


def test_wilson_interval_and_consensus() -> None:
    value, ci = wilson(8, 10)
    z = 1.959963984540054
    centre = (0.8 + z**2 / 20) / (1 + z**2 / 10)
    half = z * math.sqrt(0.8 * 0.2 / 10 + z**2 / 400) / (1 + z**2 / 10)
    assert value == 0.8 and ci == pytest.approx((centre - half, centre + half))
    assert wilson(0, 0) == (None, None)
    agreed, conflicts = consensus({"ann": {"a": 1, "b": 0, "c": 1}, "bob": {"a": 1, "b": 1}})
    assert agreed == {"a": 1, "c": 1} and conflicts == ["b"]
    found = agreement({"a": 0, "b": 1, "c": 1}, {"ann": {"a": 1, "b": 0, "c": 1}, "bob": {"a": 1}})
    assert found.sensitivity == 0.5 and found.disagreements == [("a", 0, 1), ("b", 1, 0)]


def _mock_job(client: TestClient, n: int = 30) -> tuple[str, dict[str, float]]:
    papers = [{"id": f"p{i}", "title": f"Trial {i} of exercise", "abstract": "x"} for i in range(n)]
    criteria = [{"name": "Design", "type": "include", "value": "Randomised trials"}]
    body = {"papers": papers, "criteria": criteria, "mock": True, "threshold": 3}
    job_id = client.post("/v1/screening/jobs", json=body).json()["job_id"]
    deadline = time.monotonic() + 30
    while (job := client.get(f"/v1/screening/jobs/{job_id}").json())["status"] != "completed":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    return job_id, {r["id"]: r["final_score"] for r in job["results"]}


def test_the_endpoint_on_a_mock_job(client: TestClient) -> None:
    job_id, scores = _mock_job(client)
    ai = {p: int(s >= 3) for p, s in scores.items()}
    ann = {p: (1 - v if i < 4 else v) for i, (p, v) in enumerate(sorted(ai.items()))}
    bob = dict(ann) | {"p1": 1 - ann["p1"]}  # one conflict between the reviewers
    response = client.post(
        f"/v1/screening/jobs/{job_id}/agreement", json={"reviewers": {"ann": ann, "bob": bob}}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert [p["raters"] for p in body["pairs"]] == [["AI", "ann"], ["AI", "bob"], ["ann", "bob"]]
    assert body["pairs"][0]["n"] == 30 and body["pairs"][0]["percent_agreement"] == 26 / 30
    assert body["ai_vs_consensus"]["conflicts"] == 1 and body["ai_vs_consensus"]["papers"] == 29
    risks = [d["risk"] for d in body["disagreements"]]
    assert risks == sorted(risks, key=lambda r: r != "missed_include")  # missed includes first
    assert len(body["disagreements"]) == len([p for p in sorted(ai)[:4] if p != "p1"])
    assert "Cohen's kappa" in body["report"] and "Gwet's AC1" in body["report"]
    assert "at least 3" in body["report"]
    for d in body["disagreements"]:  # mock: an exclusion fails "Design", quoting the title
        if d["risk"] == "missed_include":
            assert d["exclusion_reason"] in ("Design", "unclear")
            if d["exclusion_reason"] == "Design":
                assert d["quote"] and d["quote_verified"] is True
        else:
            assert d["exclusion_reason"] is None
    explained = sum(c["disagreements"] + c["unclear"] for c in body["criteria"])
    assert explained >= len(body["disagreements"]) - sum(
        1 for d in body["disagreements"] if d["exclusion_reason"] == "unclear"
    )


def test_per_criterion_counts_what_each_verdict_explains() -> None:
    """A missed include counts for the criteria the AI failed it on; an extra include for
    the criteria it judged to pass; unclear verdicts apart; old results by their decisive
    criteria."""
    from crystallise.decisions.service import explained_by_criterion
    from crystallise.screening.schemas import ScreeningResult

    def verdicts(**by_name: str) -> ScreeningResult:
        kinds = {"Population": "include", "Design": "include", "Reviews": "exclude"}
        assessed = [
            {"criterion": name, "id": name[0], "type": kinds[name], "verdict": v}
            for name, v in by_name.items()
        ]
        return ScreeningResult(id="p", criteria_assessment=assessed)

    rows = explained_by_criterion(
        [
            ("missed_include", verdicts(Population="met", Design="not_met", Reviews="not_met")),
            ("missed_include", verdicts(Population="unclear", Design="met", Reviews="met")),
            ("extra_include", verdicts(Population="met", Design="unclear", Reviews="not_met")),
            # stored before issue 25
            ("missed_include", ScreeningResult(id="p", decisive_criteria=["Design"])),
        ]
    )
    got = {
        r.criterion: (r.disagreements, r.missed_includes, r.extra_includes, r.unclear) for r in rows
    }
    assert got == {
        "Design": (2, 2, 0, 1),
        "Reviews": (2, 1, 1, 0),
        "Population": (1, 0, 1, 1),
    }
    assert [r.criterion for r in rows] == ["Design", "Reviews", "Population"]


@pytest.mark.parametrize(
    ("reviewers", "problem"),
    [
        ({"ann": {"nope": 1}}, "unknown paper ids"),
        ({"ann": {"p0": 2}}, "reviewers"),
        ({"ann": {}}, "decided no paper"),
        ({"AI": {"p0": 1}}, "AI"),
    ],
)
def test_bad_input_is_a_400_naming_it(
    client: TestClient, reviewers: dict[str, dict[str, int]], problem: str
) -> None:
    job_id, _ = _mock_job(client, 3)
    response = client.post(f"/v1/screening/jobs/{job_id}/agreement", json={"reviewers": reviewers})
    assert response.status_code == 400 and problem in response.text, response.text
