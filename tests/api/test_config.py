"""Configuration API: service configs persist in the database; prompt registry listing."""

from __future__ import annotations

from fastapi.testclient import TestClient

from crystallise.api.app import create_app
from crystallise.config.settings import Settings

SERVICE_IDS = {
    "screening",
    "screening.clustering",
    "extraction",
    "indexer",
    "criteria",
    "deduplication",
}
FIELDS = {
    "service_id",
    "model",
    "system_prompt",
    "prompt_template_id",
    "temperature",
    "max_output_tokens",
    "extra",
}


def test_lists_every_spec_service(client: TestClient) -> None:
    configs = client.get("/v1/config/services").json()
    assert {c["service_id"] for c in configs} >= SERVICE_IDS
    assert all(set(c) == FIELDS for c in configs)


def test_system_prompt_is_inherited_from_registry(client: TestClient) -> None:
    config = client.get("/v1/config/services/criteria").json()
    assert config["prompt_template_id"] == "criteria.generation"
    assert "eligibility criteria" in config["system_prompt"]


def test_unknown_service_returns_default_config(client: TestClient) -> None:
    response = client.get("/v1/config/services/not-a-service")
    assert response.status_code == 200
    assert response.json()["service_id"] == "not-a-service"
    assert response.json()["model"]


def test_partial_update_survives_restart(settings: Settings) -> None:
    with TestClient(create_app(settings)) as c:
        response = c.put(
            "/v1/config/services/screening", json={"model": "gpt-5-mini", "temperature": 0.2}
        )
        assert response.status_code == 200
        body = response.json()
        assert body["model"] == "gpt-5-mini" and body["temperature"] == 0.2
        assert body["max_output_tokens"] == 2048  # untouched field keeps its default
        c.put("/v1/config/services/screening", json={"extra": {"k": 1}})
    with TestClient(create_app(settings)) as c:  # a new process on the same database
        body = c.get("/v1/config/services/screening").json()
    assert (
        body["model"] == "gpt-5-mini" and body["temperature"] == 0.2 and body["extra"] == {"k": 1}
    )


def test_update_rejects_bad_values(client: TestClient) -> None:
    bad_model = client.put("/v1/config/services/screening", json={"model": "gpt-99"})
    assert bad_model.status_code == 400
    assert bad_model.json()["detail"]["error_code"] == "validation"
    assert client.put("/v1/config/services/screening", json={"temperature": 5}).status_code == 400
    assert client.put("/v1/config/services/screening", json={"colour": "red"}).status_code == 400
    assert (
        client.put("/v1/config/services/screening", json={"prompt_template_id": "nope"}).status_code
        == 400
    )


def test_prompt_registry_lists_prompt_info(client: TestClient) -> None:
    prompts = client.get("/v1/config/prompts").json()
    names = {p["name"] for p in prompts}
    assert "criteria.question_analysis" in names
    for prompt in prompts:
        assert prompt["service"] in {"screening", "criteria", "indexer"}
        assert prompt["system_or_user"] in {"system", "user", "both"}
        assert isinstance(prompt["has_variables"], bool) and prompt["description"]
        assert prompt["name"].count(".") >= 1


def test_admin_overrides_reach_the_pipelines(client: TestClient) -> None:
    """A system prompt / temperature set through the config API is what the model receives."""
    import time

    from tests.fake_openai import FakeOpenAIServer

    fake: FakeOpenAIServer = client.app.state.fake  # type: ignore[attr-defined]
    client.put(
        "/v1/config/services/screening", json={"system_prompt": "CUSTOM RUBRIC", "temperature": 0.3}
    )
    client.put("/v1/config/services/extraction", json={"system_prompt": "CUSTOM EXTRACTION RULES"})
    job = client.post(
        "/v1/screening/jobs", json={"papers": [{"id": "a", "title": "t"}], "model": "gpt-4.1-mini"}
    ).json()
    for _ in range(200):
        if client.get(f"/v1/screening/jobs/{job['job_id']}").json()["status"] == "completed":
            break
        time.sleep(0.02)
    label = next(
        r["body"]
        for r in fake.requests()
        if r["body"]["response_format"]["json_schema"]["name"] == "LabelOutput"
    )
    assert (
        label["messages"][0]["content"].startswith("CUSTOM RUBRIC") and label["temperature"] == 0.3
    )
    client.post(
        "/v1/indexer/run",
        json={
            "records": [{"ID": 1, "Title": "t"}],
            "fields": [{"name": "n", "data_type_primary": "number"}],
        },
    )
    assert fake.requests()[-1]["body"]["messages"][0]["content"] == "CUSTOM EXTRACTION RULES"


def test_env_models_seed_the_screening_services(tmp_path: object) -> None:
    from tests.conftest import make_settings

    settings = make_settings(
        tmp_path, default_model="gpt-5.4-nano", clustering_model="gpt-4.1-mini"
    )
    with TestClient(create_app(settings)) as c:
        assert c.get("/v1/config/services/screening").json()["model"] == "gpt-5.4-nano"
        assert c.get("/v1/config/services/screening.clustering").json()["model"] == "gpt-4.1-mini"
