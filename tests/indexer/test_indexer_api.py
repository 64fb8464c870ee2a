"""AutoIndexer: tool schema, typed values, evidence verification, per-record errors, jobs, helpers."""

from __future__ import annotations

import time
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.fake_openai import FakeOpenAIServer

FIELDS = [
    {
        "name": "study_design",
        "description": "Type of study",
        "data_type_primary": "text",
        "examples": ["RCT", "cohort"],
        "examples_mode": "enum",
    },
    {
        "name": "sample_size",
        "description": "Number of participants randomised",
        "data_type_primary": "number",
    },
    {"name": "placebo", "description": "Placebo-controlled?", "data_type_primary": "yes_no"},
    {"name": "conditions", "description": "Conditions studied", "data_type_primary": "list_text"},
    {"name": "doses_mg", "description": "Doses in mg", "data_type_primary": "list_number"},
]


def records(n: int) -> list[dict[str, Any]]:
    return [
        {
            "ID": f"r{i}",
            "Title": f"Record {i}: RCT of drug X",
            "Abstract": f"We randomised {150 + i} adults with type 2 diabetes to 10 mg or placebo.",
        }
        for i in range(n)
    ]


def field(
    entry: dict[str, Any], value: Any, evidence: list[str], confidence: float = 0.9
) -> dict[str, Any]:
    return {"evidence": evidence, "value": value, "reasoning": "r", "confidence": confidence}


# ---- mock mode -----------------------------------------------------------------------------


def test_mock_run_modes_and_shape(client: TestClient, fake: FakeOpenAIServer) -> None:
    body = client.post(
        "/v1/indexer/run",
        json={"records": records(30), "fields": FIELDS, "mode": "test", "mock": True},
    ).json()
    assert [r["ID"] for r in body["results"]] == [f"r{i}" for i in range(5)]
    sample = client.post(
        "/v1/indexer/run",
        json={"records": records(30), "fields": FIELDS, "mode": "sample", "mock": True},
    ).json()
    assert len(sample["results"]) == 20
    result = body["results"][0]
    assert result["indexing_status"] == "ok" and set(FIELDS[i]["name"] for i in range(5)) <= set(
        result
    )
    assert (
        result["sample_size"]["value"] == 150 and result["sample_size"]["evidence_verified"] is True
    )
    assert body["errors"] == [] and set(body["usage"]) == {
        "input_tokens",
        "output_tokens",
        "total_tokens",
        "estimated_cost_usd",
    }
    assert fake.state.calls["chat"] == 0


def test_mock_suggest_fields_verbatim(client: TestClient) -> None:
    body = client.post(
        "/v1/indexer/suggest-fields",
        json={"project_context": {"description": "RCTs of exercise for depression"}, "mock": True},
    ).json()
    assert body == {
        "fields": [
            {
                "name": "study_design",
                "description": "Type of study",
                "data_type_primary": "text",
                "examples": ["RCT", "cohort"],
            },
            {
                "name": "sample_size",
                "description": "Number of participants",
                "data_type_primary": "number",
            },
        ],
        "warnings": [],
    }


def test_mock_refine_and_group(client: TestClient) -> None:
    refine = client.post(
        "/v1/indexer/refine-fields", json={"fields": FIELDS[:1], "mock": True}
    ).json()
    assert (
        refine["suggestions"][0]["action"] == "modify"
        and refine["suggestions"][0]["original_field_name"] == "study_design"
    )
    values = ["RCT", "randomised controlled trial", "cohort study", "case-control", "RCT"]
    groups = client.post(
        "/v1/indexer/group-tags",
        json={"field_name": "study_design", "values": values, "mock": True},
    ).json()["groups"]
    placed = [v for g in groups for v in g["values"]]
    assert sorted(placed) == sorted(set(values))


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ({"fields": FIELDS}, "records"),
        ({"records": [], "fields": FIELDS}, "records"),
        ({"records": [{"Title": "x"}], "fields": FIELDS}, "record 0 has no ID"),
        ({"records": [{"ID": 1}, {"ID": "1"}], "fields": FIELDS}, "duplicate record ID '1'"),
        ({"records": records(1), "fields": []}, "fields"),
        ({"records": records(1)}, "fields"),
        (
            {"records": records(1), "fields": [FIELDS[1], FIELDS[1]]},
            "duplicate field name 'sample_size'",
        ),
        (
            {"records": records(1), "fields": [{"name": "x", "data_type_primary": "date"}]},
            "data_type_primary",
        ),
        (
            {
                "records": records(1),
                "fields": [{"name": "x", "data_type_primary": "text", "examples_mode": "enum"}],
            },
            "needs examples",
        ),
        ({"records": records(1), "fields": FIELDS, "mode": "all"}, "mode"),
    ],
)
def test_bad_input_is_400(client: TestClient, body: dict[str, Any], needle: str) -> None:
    for path in ("/v1/indexer/run", "/v1/indexer/jobs"):
        response = client.post(path, json={**body, "mock": True})
        assert response.status_code == 400 and needle in response.json()["detail"], response.text


# ---- real mode -------------------------------------------------------------------------------


def test_tool_schema_matches_fields(client: TestClient, fake: FakeOpenAIServer) -> None:
    response = client.post(
        "/v1/indexer/run",
        json={
            "records": records(1),
            "fields": FIELDS,
            "model": "gpt-4.1-mini",
            "project_context": {"description": "Diabetes drugs", "research_questions": ["Q1?"]},
        },
    )
    assert response.status_code == 200, response.text
    body = fake.requests()[-1]["body"]
    tool = body["tools"][0]["function"]
    assert body["tool_choice"] == {"type": "function", "function": {"name": tool["name"]}}
    params = tool["parameters"]
    assert tool["strict"] is True and params["additionalProperties"] is False
    assert (
        params["required"] == [f["name"] for f in FIELDS]
        and list(params["properties"]) == params["required"]
    )
    per_field = params["properties"]
    assert list(per_field["sample_size"]["properties"]) == [
        "evidence",
        "value",
        "reasoning",
        "confidence",
    ]
    assert per_field["sample_size"]["properties"]["value"]["type"] == ["number", "null"]
    assert per_field["placebo"]["properties"]["value"]["enum"] == ["yes", "no", "not_reported"]
    assert per_field["study_design"]["properties"]["value"]["enum"] == ["RCT", "cohort", None]
    assert per_field["doses_mg"]["properties"]["value"]["items"] == {"type": "number"}
    assert "Diabetes drugs" in body["messages"][1]["content"] and body["messages"][1][
        "content"
    ].endswith("</record>")


def test_values_parse_and_evidence_is_checked(client: TestClient, fake: FakeOpenAIServer) -> None:
    fake.script(
        tool_arguments={
            "study_design": field({}, "RCT", ["We randomised"]),
            "sample_size": field({}, "150", ["randomised 150 adults"]),
            "placebo": field(
                {}, "Yes", ["10  MG or placebo"]
            ),  # case and whitespace differ: still verified
            "conditions": field(
                {}, ["type 2 diabetes", "type 2 diabetes"], ["adults with type 2 diabetes"]
            ),
            "doses_mg": field(
                {}, [10, "20"], ["a dose of 20 mg was also given"], confidence=0.8
            ),  # not in the abstract
        }
    )
    body = client.post(
        "/v1/indexer/run", json={"records": records(1), "fields": FIELDS, "model": "gpt-4.1-mini"}
    ).json()
    r = body["results"][0]
    assert r["ID"] == "r0" and r["indexing_status"] == "ok"
    assert r["study_design"]["value"] == "RCT" and r["sample_size"]["value"] == 150
    assert r["placebo"]["value"] == "yes" and r["placebo"]["evidence_verified"] is True
    assert r["conditions"]["value"] == ["type 2 diabetes"]
    assert r["doses_mg"]["value"] == [10, 20]
    assert r["doses_mg"]["evidence_verified"] is False and r["doses_mg"]["unverified_evidence"] == [
        "a dose of 20 mg was also given"
    ]
    assert r["doses_mg"]["confidence"] == 0.4  # an unverifiable quote halves the stated confidence
    assert body["model_version"].startswith("gpt-4.1-mini") and body["usage"]["total_tokens"] > 0


def test_per_record_provider_error_only_fails_that_record(
    client: TestClient, fake: FakeOpenAIServer
) -> None:
    fake.configure(
        fail_statuses=[None, 400]
    )  # the second record's call is rejected (not retryable)
    body = client.post(
        "/v1/indexer/run",
        json={
            "records": records(4),
            "fields": FIELDS[:2],
            "max_workers": 1,
            "model": "gpt-4.1-mini",
        },
    ).json()
    statuses = [r["indexing_status"] for r in body["results"]]
    assert statuses == ["ok", "error", "ok", "ok"]
    assert (
        body["results"][1]["error"]
        and len(body["errors"]) == 1
        and body["errors"][0].startswith("Record r1:")
    )


def test_max_workers_bounds_concurrency(client: TestClient, fake: FakeOpenAIServer) -> None:
    fake.configure(latency_s=0.05)
    client.post(
        "/v1/indexer/run",
        json={"records": records(12), "fields": FIELDS[:1], "max_workers": 2, "batch_size": 5},
    )
    assert fake.state.peak_in_flight == 2


def wait_job(client: TestClient, job_id: str, timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body = client.get(f"/v1/indexer/jobs/{job_id}").json()
        if body["status"] in ("completed", "failed", "cancelled"):
            return body
        time.sleep(0.05)
    raise AssertionError(body)


def test_async_job_lifecycle_with_partial_results(
    client: TestClient, fake: FakeOpenAIServer
) -> None:
    fake.configure(latency_s=0.1)
    created = client.post(
        "/v1/indexer/jobs",
        json={
            "records": records(20),
            "fields": FIELDS[:2],
            "project_id": 5,
            "max_workers": 2,
            "model": "gpt-4.1-mini",
        },
    ).json()
    assert set(created) == {"job_id", "status", "progress"} and created["status"] == "pending"
    job_id = created["job_id"]
    saw_partial = False
    for _ in range(200):
        body = client.get(f"/v1/indexer/jobs/{job_id}").json()
        if body["status"] == "running" and 0 < len(body["partial_results"]) < 20:
            saw_partial = True
            assert body["usage"]["total_tokens"] > 0 or body["progress"] > 0
            assert (
                client.get("/v1/indexer/active-job", params={"project_id": 5}).json()["job_id"]
                == job_id
            )
            break
        time.sleep(0.05)
    assert saw_partial
    final = wait_job(client, job_id)
    assert final["status"] == "completed" and len(final["partial_results"]) == 20
    assert final["usage"]["input_tokens"] == fake.state.prompt_tokens and final["model_version"]
    assert final["completed_at"] and final["duration_ms"] is not None and final["errors"] == []
    per_paper = final["usage"]["estimated_cost_usd"] / 20
    assert final["usage"]["cost_per_paper_usd"] == pytest.approx(per_paper, abs=1e-7)
    summary = client.get("/v1/indexer/jobs").json()[0]
    assert (
        set(summary)
        == {
            "job_id",
            "status",
            "progress",
            "model",
            "record_count",
            "project_id",
            "duration_ms",
            "estimated_cost_usd",
            "created_at",
            "completed_at",
        }
        and summary["record_count"] == 20
    )


def test_async_job_mock_and_cancel(client: TestClient, fake: FakeOpenAIServer) -> None:
    done = wait_job(
        client,
        client.post(
            "/v1/indexer/jobs", json={"records": records(8), "fields": FIELDS, "mock": True}
        ).json()["job_id"],
    )
    assert (
        done["status"] == "completed"
        and len(done["partial_results"]) == 8
        and fake.state.calls["chat"] == 0
    )
    fake.configure(latency_s=0.2)
    job_id = client.post(
        "/v1/indexer/jobs", json={"records": records(60), "fields": FIELDS[:1], "max_workers": 2}
    ).json()["job_id"]
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:  # cancel once a record is done, not at a set time
        if client.get(f"/v1/indexer/jobs/{job_id}").json()["partial_results"]:
            break
        time.sleep(0.05)
    client.post(f"/v1/indexer/jobs/{job_id}/cancel")
    final = wait_job(client, job_id)
    assert final["status"] == "cancelled" and 0 < len(final["partial_results"]) < 60


def test_group_tags_repairs_model_answer(client: TestClient, fake: FakeOpenAIServer) -> None:
    fake.script(
        {
            "groups": [
                {
                    "name": "RCTs",
                    "rationale": "r",
                    "values": ["RCT", "randomised controlled trial", "invented value"],
                },
                {"name": "Observational", "rationale": "r", "values": ["cohort study", "RCT"]},
            ]
        }
    )
    values = ["RCT", "randomised controlled trial", "cohort study", "case-control"]
    body = client.post(
        "/v1/indexer/group-tags", json={"field_name": "study_design", "values": values}
    ).json()
    placed = [v for g in body["groups"] for v in g["values"]]
    assert sorted(placed) == sorted(values) and len(placed) == len(set(placed))
    assert body["groups"][-1] == {
        "name": "Ungrouped",
        "values": ["case-control"],
        "rationale": "Not placed by the model.",
    }
    assert body["usage"]["total_tokens"] > 0


def test_refine_fields_keeps_only_real_references(
    client: TestClient, fake: FakeOpenAIServer
) -> None:
    new = {
        "name": "primary_outcome",
        "description": "d",
        "data_type_primary": "text",
        "examples": [],
    }
    fake.script(
        {
            "suggestions": [
                {
                    "action": "modify",
                    "original_field_name": "sample_size",
                    "target_field_name": None,
                    "field": new,
                    "rationale": "r",
                },
                {
                    "action": "remove",
                    "original_field_name": "ghost",
                    "target_field_name": None,
                    "field": new,
                    "rationale": "r",
                },
                {
                    "action": "merge",
                    "original_field_name": "placebo",
                    "target_field_name": "nowhere",
                    "field": new,
                    "rationale": "r",
                },
                {
                    "action": "add",
                    "original_field_name": None,
                    "target_field_name": None,
                    "field": new,
                    "rationale": "r",
                },
            ]
        }
    )
    body = client.post("/v1/indexer/refine-fields", json={"fields": FIELDS[:3]}).json()
    assert [(s["action"], s.get("original_field_name")) for s in body["suggestions"]] == [
        ("modify", "sample_size"),
        ("add", None),
    ]
    assert len(body["warnings"]) == 2


def test_suggest_fields_skips_existing(client: TestClient, fake: FakeOpenAIServer) -> None:
    fake.script(
        {
            "fields": [
                {
                    "name": "Sample Size",
                    "description": "n",
                    "data_type_primary": "number",
                    "examples": [],
                },
                {
                    "name": "follow-up duration",
                    "description": "weeks",
                    "data_type_primary": "number",
                    "examples": ["12"],
                },
            ],
            "warnings": [
                {
                    "field": "follow-up duration",
                    "risk_level": "high",
                    "reason": "rarely in abstracts",
                    "suggested_fallback": "full text",
                }
            ],
        }
    )
    body = client.post(
        "/v1/indexer/suggest-fields",
        json={"project_context": {"description": "x"}, "existing_fields": ["sample_size"]},
    ).json()
    assert [f["name"] for f in body["fields"]] == ["follow_up_duration"]
    assert (
        body["warnings"][0]["field"] == "follow_up_duration"
        and body["warnings"][0]["risk_level"] == "high"
    )
    assert fake.requests()[-1]["body"]["model"] == "gpt-4.1"


def test_estimate_grows_with_records_and_fields(client: TestClient) -> None:
    def cost(fields: list[dict[str, Any]], n: int) -> dict[str, Any]:
        return client.post(
            "/v1/indexer/estimate", json={"fields": fields, "record_count": n}
        ).json()

    base = cost(FIELDS[:1], 100)
    assert set(base) == {
        "estimated_input_tokens",
        "estimated_output_tokens",
        "estimated_cost_usd",
        "model",  # the model priced (issue 17); "warnings" only when a fallback applied
        "confidence",
        "disclaimer",
    }
    assert cost(FIELDS[:1], 200)["estimated_cost_usd"] > base["estimated_cost_usd"]
    assert cost(FIELDS, 100)["estimated_output_tokens"] > base["estimated_output_tokens"]
