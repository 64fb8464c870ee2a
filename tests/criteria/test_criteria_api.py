"""Criteria AI endpoints: mock mode reproduces the reference; real mode via the fake server."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from tests.conftest import SERVER_KEY
from tests.fake_openai import FakeOpenAIServer

# ---- mock mode: the api-reference examples ---------------------------------------------------


def test_mock_analyze_question_verbatim(client: TestClient, fake: FakeOpenAIServer) -> None:
    r = client.post(
        "/v1/criteria/analyze-question",
        json={"research_question": "Does exercise help depression?", "mock": True},
    )
    assert r.json() == {
        "status": "could_improve",
        "missing_elements": ["Population is not specified", "Outcome measures are vague"],
        "suggestion": "Mock mode: specify the population, intervention, and primary outcome to make the question searchable. Run without mock for real analysis.",
    }
    assert fake.state.calls["chat"] == 0


def test_mock_generate_shape(client: TestClient) -> None:
    r = client.post(
        "/v1/criteria/generate",
        json={"project_description": "RCTs of exercise for depression in adults", "mock": True},
    )
    criteria = r.json()["criteria"]
    assert [(c["category"], c["text"], c["criterion_type"]) for c in criteria] == [
        ("Study Design", "Review articles, systematic reviews, meta-analyses", "exclude"),
        ("Publication Type", "Conference abstracts without full publication", "exclude"),
    ]
    assert all(c["description"] for c in criteria)


def test_mock_picos_verbatim(client: TestClient) -> None:
    r = client.post(
        "/v1/criteria/picos",
        json={
            "project_description": "RCTs of metformin vs placebo in adults with type 2 diabetes",
            "mock": True,
        },
    )
    assert r.json() == {
        "elements": {
            "population": "Adults with the condition described in the project",
            "intervention": "The primary intervention or exposure under review",
            "comparison": "Standard of care, placebo, or no intervention",
            "outcome": "Primary clinical outcomes, efficacy, and safety measures",
            "study_design": "Study designs relevant to the research question",
        },
        "gap_flags": [
            "Mock mode: PICOS elements are placeholders — run without mock for real extraction"
        ],
        "contraindications": [],
    }


def test_mock_refine_context_echoes_input(client: TestClient) -> None:
    r = client.post(
        "/v1/criteria/refine-context",
        json={
            "description": "Review of drug X",
            "research_questions": ["Is drug X effective?"],
            "mock": True,
        },
    )
    assert r.json() == {
        "refined_description": "Review of drug X\n\n[Refined for clarity and specificity in systematic review screening.]",
        "refined_research_questions": ["Is drug X effective? [refined for precision]"],
        "explanation": "Mock mode: minor refinements applied as placeholders. Run without mock for real AI refinement.",
    }


def test_mock_refine_counts_conflicts(client: TestClient) -> None:
    body = {
        "current_criteria": [{"category": "Population", "text": "Adults only"}],
        "conflicts": [{"paper_title": "Study A", "decision_a": "include", "decision_b": "exclude"}],
        "mock": True,
    }
    assert client.post("/v1/criteria/refine", json=body).json() == {
        "criteria": [
            {
                "category": "Study Design",
                "text": "Exclude retrospective observational studies without a control arm",
                "criterion_type": "exclude",
                "confidence": 0.72,
                "rationale": "Derived from 1 reviewer conflict(s) on study design.",
            },
            {
                "category": "Outcome Reporting",
                "text": "Exclude studies that do not report the primary outcome quantitatively",
                "criterion_type": "exclude",
                "confidence": 0.65,
                "rationale": "Pattern across 1 conflict(s) flagged insufficient outcome data.",
            },
        ]
    }
    body["conflicts"] = body["conflicts"] * 3  # type: ignore[operator]
    assert (
        "3 reviewer conflict(s)"
        in client.post("/v1/criteria/refine", json=body).json()["criteria"][0]["rationale"]
    )


def test_mock_consolidate_verbatim(client: TestClient) -> None:
    body = {
        "criteria": [
            {"id": 1, "category": "Population", "text": "Adults 18+"},
            {"id": 2, "category": "Population", "text": "Adult participants over 18"},
        ],
        "mock": True,
    }
    assert client.post("/v1/criteria/consolidate", json=body).json() == {
        "duplicate_groups": [],
        "consolidation_proposals": [],
        "warnings": ["Mock mode: no consolidation performed"],
    }


@pytest.mark.parametrize(
    ("path", "body", "needle"),
    [
        ("/v1/criteria/analyze-question", {"research_question": "   "}, "research_question"),
        ("/v1/criteria/generate", {"project_description": ""}, "project_description"),
        (
            "/v1/criteria/generate",
            {"project_description": "x", "criterion_type": "maybe"},
            "criterion_type",
        ),
        ("/v1/criteria/picos", {}, "project_description"),
        ("/v1/criteria/refine-context", {"description": "\n\t"}, "description"),
        ("/v1/criteria/refine", {"conflicts": []}, "current_criteria"),
        ("/v1/criteria/consolidate", {"criteria": []}, "criteria"),
    ],
)
def test_bad_input_is_400_naming_field(
    client: TestClient, path: str, body: dict[str, object], needle: str
) -> None:
    r = client.post(path, json={**body, "mock": True})
    assert r.status_code == 400 and needle in r.json()["detail"]


# ---- real mode against the fake server ---------------------------------------------------------


def _last(fake: FakeOpenAIServer) -> dict[str, object]:
    return fake.requests()[-1]


def test_analyze_question_real_mode(client: TestClient, fake: FakeOpenAIServer) -> None:
    fake.script(
        {
            "elements": [
                {
                    "element": "population",
                    "source_span": None,
                    "status": "absent",
                    "note": "No population.",
                },
                {
                    "element": "intervention",
                    "source_span": "exercise",
                    "status": "present",
                    "note": "",
                },
                {"element": "comparison", "source_span": None, "status": "absent", "note": ""},
                {
                    "element": "outcome",
                    "source_span": "help depression",
                    "status": "vague",
                    "note": "Which measure?",
                },
                {"element": "study_design", "source_span": None, "status": "absent", "note": ""},
            ],
            "suggestion": "Specify adults with major depression and the depression scale.",
        }
    )
    r = client.post(
        "/v1/criteria/analyze-question",
        json={"research_question": "Does exercise help depression?"},
        headers={"X-OpenAI-API-Key": "sk-caller-key-0001"},
    )
    assert r.status_code == 200, r.text
    assert r.json() == {
        "status": "could_improve",
        "missing_elements": ["Population is not specified", "Outcome is vague: Which measure?"],
        "suggestion": "Specify adults with major depression and the depression scale.",
    }
    req = _last(fake)
    assert req["key"] == "sk-caller-key-0001"
    body = req["body"]
    assert body["model"] == "gpt-5-mini" and "temperature" not in body  # type: ignore[index, operator]
    assert body["response_format"]["json_schema"]["name"] == "QuestionAnalysisOutput"  # type: ignore[index]
    assert "Does exercise help depression?" in body["messages"][1]["content"]  # type: ignore[index]


def test_analyze_question_ready_when_core_present(
    client: TestClient, fake: FakeOpenAIServer
) -> None:
    fake.script(
        {
            "elements": [
                {"element": e, "source_span": "x", "status": "present", "note": ""}
                for e in ("population", "intervention", "outcome")
            ],
            "suggestion": "Ready.",
        }
    )
    r = client.post(
        "/v1/criteria/analyze-question",
        json={
            "research_question": "In adults with MDD, does aerobic exercise reduce HAM-D scores?"
        },
    )
    assert r.json()["status"] == "ready" and r.json()["missing_elements"] == []


def test_generate_real_mode_dedupes_existing(client: TestClient, fake: FakeOpenAIServer) -> None:
    item = {
        "category": "Study Design",
        "description": "d",
        "rationale": "r",
        "title_abstract_assessable": True,
        "confidence": 0.9,
    }
    fake.script(
        {
            "criteria": [
                {**item, "text": "Animal studies"},
                {**item, "text": "Case reports"},
                {**item, "text": "case reports."},
            ]
        }
    )
    r = client.post(
        "/v1/criteria/generate",
        json={
            "project_description": "RCTs of exercise for depression",
            "existing_criteria": [{"text": "Animal studies"}],
            "criterion_type": "exclude",
            "model": "gpt-4.1-mini",
        },
    )
    assert r.status_code == 200, r.text
    criteria = r.json()["criteria"]
    assert [c["text"] for c in criteria] == ["Case reports"]
    assert (
        criteria[0]["criterion_type"] == "exclude"
        and criteria[0]["title_abstract_assessable"] is True
    )
    body = _last(fake)["body"]
    assert body["model"] == "gpt-4.1-mini" and body["temperature"] == 0.2  # type: ignore[index]
    assert "Animal studies" in body["messages"][1]["content"]  # type: ignore[index]


def test_picos_and_refine_context_real_mode(client: TestClient, fake: FakeOpenAIServer) -> None:
    r = client.post(
        "/v1/criteria/picos",
        json={"project_description": "Metformin vs placebo in adults with T2D"},
    )
    assert r.status_code == 200 and set(r.json()["elements"]) == {
        "population",
        "intervention",
        "comparison",
        "outcome",
        "study_design",
    }
    assert _last(fake)["body"]["model"] == "gpt-4.1"  # type: ignore[index]
    r = client.post(
        "/v1/criteria/refine-context",
        json={"description": "Review of drug X", "research_questions": ["Q1"]},
    )
    assert r.status_code == 200 and isinstance(r.json()["refined_research_questions"], list)


def test_refine_keeps_only_proposals_tied_to_real_conflicts(
    client: TestClient, fake: FakeOpenAIServer
) -> None:
    item = {
        "action": "add",
        "category": "Study Design",
        "description": "d",
        "criterion_type": "exclude",
        "rationale": "Pattern.",
        "confidence": 0.8,
        "title_abstract_assessable": True,
    }
    fake.script(
        {
            "criteria": [
                {**item, "text": "Exclude case series", "conflict_ids": ["C1"]},
                {**item, "text": "Invented", "conflict_ids": ["C9"]},
            ]
        }
    )
    body = {
        "current_criteria": [{"id": 1, "category": "Population", "text": "Adults only"}],
        "conflicts": [{"paper_title": "Study A", "ai_score": 4, "human_decision": "exclude"}],
    }
    r = client.post("/v1/criteria/refine", json=body)
    assert [c["text"] for c in r.json()["criteria"]] == ["Exclude case series"]
    assert "C1" in r.json()["criteria"][0]["rationale"]
    assert "C1: " in _last(fake)["body"]["messages"][1]["content"]  # type: ignore[index]


def test_consolidate_guards(client: TestClient, fake: FakeOpenAIServer) -> None:
    group = {
        "group_type": "semantic",
        "category": "Population",
        "recommended_primary_id": 1,
        "merge_rationale": "same",
    }
    prop = {
        "category": "Population",
        "proposed_description": "d",
        "proposed_type": "include",
        "merge_rationale": "m",
    }
    fake.script(
        {
            "duplicate_groups": [
                {**group, "criterion_ids": [1, 2], "ai_confidence": 0.9},
                {**group, "criterion_ids": [1, 3], "ai_confidence": 0.5},
                {**group, "criterion_ids": [2, 99], "ai_confidence": 0.95},
            ],
            "consolidation_proposals": [
                {
                    **prop,
                    "criterion_ids": [1, 2],
                    "proposed_merged_criterion": "Adults aged 18 or over",
                    "ai_confidence": 0.9,
                },
                {
                    **prop,
                    "criterion_ids": [1, 2],
                    "proposed_merged_criterion": "Adults aged eighteen years or older at the time of study enrolment",
                    "ai_confidence": 0.9,
                },
                {
                    **prop,
                    "criterion_ids": [1, 2],
                    "proposed_merged_criterion": "Adults",
                    "ai_confidence": 0.6,
                },
            ],
        }
    )
    body = {
        "criteria": [
            {"id": 1, "category": "Population", "text": "Adults 18+"},
            {"id": 2, "category": "Population", "text": "Adult participants over 18"},
            {"id": 3, "category": "Population", "text": "Older adults"},
        ]
    }
    r = client.post("/v1/criteria/consolidate", json=body)
    out = r.json()
    assert [g["criterion_ids"] for g in out["duplicate_groups"]] == [[1, 2]]
    assert [p["proposed_merged_criterion"] for p in out["consolidation_proposals"]] == [
        "Adults aged 18 or over"
    ]
    warnings = " | ".join(out["warnings"])
    assert "0.50 < 0.75" in warnings and "unknown criterion ids [99]" in warnings
    assert "words > 10" in warnings and "0.60 < 0.75" in warnings
    assert _last(fake)["body"]["model"] == "gpt-4.1"  # type: ignore[index]


@pytest.mark.parametrize(
    ("knobs", "status", "code", "retryable"),
    [
        ({"valid_keys": ["sk-nobody"]}, 401, "auth", False),
        ({"fail_statuses": [429] * 4}, 429, "rate_limit", True),
        ({"fail_statuses": [500] * 4}, 500, "transient", True),
        ({"context_limit": 5}, 400, "validation", False),
        ({"invalid_json": 5}, 502, "transient", True),  # the model answered, wrongly
    ],
)
def test_model_errors_map_to_taxonomy(
    client: TestClient,
    fake: FakeOpenAIServer,
    knobs: dict[str, object],
    status: int,
    code: str,
    retryable: bool,
) -> None:
    fake.configure(**knobs)
    r = client.post("/v1/criteria/picos", json={"project_description": "Metformin in T2D"})
    assert r.status_code == status
    detail = r.json()["detail"]
    assert detail["error_code"] == code and detail["retryable"] is retryable and detail["message"]
    assert SERVER_KEY not in r.text


def test_service_config_model_applies(client: TestClient, fake: FakeOpenAIServer) -> None:
    client.put("/v1/config/services/criteria.analyze_question", json={"model": "gpt-5.4-mini"})
    client.post("/v1/criteria/analyze-question", json={"research_question": "Does X help Y?"})
    assert _last(fake)["body"]["model"] == "gpt-5.4-mini"  # type: ignore[index]


def test_unknown_model_is_400(client: TestClient) -> None:
    r = client.post("/v1/criteria/picos", json={"project_description": "x", "model": "gpt-99"})
    assert r.status_code == 400 and r.json()["detail"]["error_code"] == "validation"
