"""Screening a reviewer can audit (issue 25, items 1-3): a verdict per criterion with its
quote (checked against the paper), the exclusion reason by the documented rule, exports
carrying both, and PRISMA counts that add up, as JSON and as an SVG flow diagram."""

from __future__ import annotations

import csv
import io
import time
from typing import Any
from xml.etree import ElementTree

from fastapi.testclient import TestClient

from crystallise.records.parse import parse_records
from tests.fake_openai import FakeOpenAIServer

CRITERIA = [
    {"name": "Population", "type": "include", "value": "Older adults (60+)"},
    {"name": "Design", "type": "include", "value": "Randomised controlled trials"},
    {"name": "Animals", "type": "exclude", "value": "Animal studies"},
]
CHILD = "A school programme in children aged 5 to 12 with weekly sessions."


def _wait(client: TestClient, job_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while (job := client.get(f"/v1/screening/jobs/{job_id}").json())["status"] not in (
        "completed",
        "failed",
    ):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    return dict(job)


def _job(client: TestClient, papers: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    body = {"papers": papers, "criteria": CRITERIA, "threshold": 3, **extra}
    created = client.post("/v1/screening/jobs", json=body)
    assert created.status_code == 200, created.text
    return _wait(client, created.json()["job_id"])


def test_real_job_assessments_quotes_and_reasons(
    client: TestClient, fake: FakeOpenAIServer
) -> None:
    fake.script({"score": 1}, match="Kids exercise trial")
    fake.script(
        {
            "decisive_criteria": ["I1"],
            "verdict": "unmet",
            "criteria_assessment": [
                {"criterion": "I1", "verdict": "not_met", "quote": "in children aged 5 to 12"},
                {"criterion": "E1", "verdict": "unclear", "quote": "words never in the text"},
            ],
            "reasoning": "The participants are children.",
        },
        match="Kids exercise trial",
    )
    papers = [
        {"id": "kids", "title": "Kids exercise trial", "abstract": CHILD},
        {"id": "bare", "title": "Exercise in older adults"},  # no abstract
        *({"id": f"p{i}", "title": f"Trial {i}", "abstract": "Text."} for i in range(4)),
    ]
    job = _job(client, papers, model="gpt-4.1-mini", repetitions=1)
    assert job["status"] == "completed"
    for result in job["results"]:
        assessed = result["criteria_assessment"]
        assert [a["criterion"] for a in assessed] == ["Population", "Design", "Animals"]
        assert [a["type"] for a in assessed] == ["include", "include", "exclude"]
        assert {a["verdict"] for a in assessed} <= {"met", "not_met", "unclear"}
    kids = next(r for r in job["results"] if r["id"] == "kids")
    population, design, animals = kids["criteria_assessment"]
    assert population == {"criterion": "Population", "id": "I1", "type": "include",
                          "verdict": "not_met", "quote": "in children aged 5 to 12",
                          "quote_verified": True}  # fmt: skip
    assert design["verdict"] == "unclear" and design.get("quote") is None  # left out: unclear
    assert animals["quote"] == "words never in the text" and not animals["quote_verified"]
    assert kids["final_score"] == 1 and kids["exclusion_reason"] == "Population"


def test_mock_assessment_reasons_exports_and_prisma(client: TestClient) -> None:
    topics = ["Randomised controlled trials in older adults", "A cohort of mice", "Survey"]
    papers = [
        {"id": f"p{i}", "title": f"{topics[i % 3]} {i}", "abstract": "Older adults 60+."}
        for i in range(40)
    ]
    papers[3]["duplicate_of"] = "p2"
    job = _job(client, papers, mock=True)
    below = [r for r in job["results"] if r["final_score"] < 3]
    above = [r for r in job["results"] if r["final_score"] >= 3]
    assert below and above
    assert all(r.get("exclusion_reason") for r in below)
    assert not any("exclusion_reason" in r for r in above)
    for result in below:
        failed = [a for a in result["criteria_assessment"] if a["verdict"] == "not_met"]
        assert result["exclusion_reason"] == (failed[0]["criterion"] if failed else "unclear")
    job_id = job["job_id"]

    counts = client.get(f"/v1/screening/jobs/{job_id}/prisma").json()
    assert (
        counts["records_screened"]
        == 40
        == (counts["included"] + counts["excluded"] + counts["failed"] + counts["pending"])
    )
    assert counts["excluded"] == len(below) and counts["duplicates_flagged"] == 1
    assert sum(r["count"] for r in counts["excluded_by_reason"]) == counts["excluded"]
    stricter = client.get(f"/v1/screening/jobs/{job_id}/prisma?threshold=4").json()
    assert stricter["excluded"] >= counts["excluded"] and stricter["threshold"] == 4

    svg = client.get(f"/v1/screening/jobs/{job_id}/prisma?format=svg")
    assert svg.headers["content-type"].startswith("image/svg+xml")
    tree = ElementTree.fromstring(svg.content)  # well-formed XML
    text = " ".join(t.text or "" for t in tree.iter() if t.text)
    assert "Records screened (n = 40)" in text
    assert f"Records excluded (n = {counts['excluded']})" in text
    assert f"Records included (n = {counts['included']})" in text

    methods = client.get(f"/v1/screening/jobs/{job_id}/provenance").json()["methods"]
    first = counts["excluded_by_reason"][0]
    assert f"exclusions by reason: {first['reason']}: {first['count']}" in methods

    exported = client.get(f"/v1/screening/jobs/{job_id}/export?format=csv").content
    rows = list(csv.DictReader(io.StringIO(exported.decode("utf-8-sig"))))
    assert {"exclusion_reason", "I1_verdict", "I1_quote", "E1_verdict"} <= set(rows[0])
    excluded = [r for r in rows if r["decision"] == "exclude"]
    assert excluded and all(r["exclusion_reason"] for r in excluded)
    ris = client.get(f"/v1/screening/jobs/{job_id}/export?format=ris").content
    records = parse_records(ris).records
    assert any(any(k.startswith("crystallise-reason:") for k in r.keywords) for r in records)
