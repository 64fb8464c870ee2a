"""Configuration API: service configs (persisted overrides) and the prompt registry."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field, field_validator

from crystallise.api.deps import ServicesDep, require_admin_key
from crystallise.config.model_capabilities import (
    capabilities_dict,
    capabilities_for,
    table_entry,
)
from crystallise.config.registry import ServiceConfig
from crystallise.errors import BadInput, NotFound
from crystallise.prompts.registry import list_prompts
from crystallise.services import Services

router = APIRouter(prefix="/config", tags=["config"])


class ServiceConfigUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    model: str | None = Field(None, min_length=1, max_length=200)
    system_prompt: str | None = Field(None, max_length=100_000)
    prompt_template_id: str | None = None
    temperature: float | None = Field(None, ge=0.0, le=2.0, allow_inf_nan=False)
    max_output_tokens: int | None = Field(None, gt=0, le=1_000_000)
    extra: dict[str, Any] | None = None

    @field_validator("prompt_template_id")
    @classmethod
    def _known_prompt(cls, value: str | None) -> str | None:
        if value is not None and value not in {p.name for p in list_prompts()}:
            raise ValueError(f"unknown prompt_template_id '{value}'")
        return value


class PromptInfo(BaseModel):
    name: str
    service: str
    description: str
    has_variables: bool
    system_or_user: str
    version: str


@router.get("/services", response_model=list[ServiceConfig])
def list_services(services: ServicesDep) -> list[ServiceConfig]:
    return services.configs.stored()


def _known(services: Services, service_id: str) -> None:
    if not services.configs.is_known(service_id):
        raise NotFound(
            f"Unknown service id '{service_id[:64]}'; known: "
            + ", ".join(services.configs.service_ids())
        )


@router.get("/services/{service_id}", response_model=ServiceConfig)
def get_service(service_id: str, services: ServicesDep) -> ServiceConfig:
    """The contract: an unknown service_id returns a default config rather than 404."""
    return services.configs.stored(service_id)[0]


@router.put(
    "/services/{service_id}",
    response_model=ServiceConfig,
    dependencies=[Depends(require_admin_key)],
)
def update_service(
    service_id: str, body: ServiceConfigUpdate, services: ServicesDep
) -> ServiceConfig:
    """Partial update; a field sent as ``null`` is reset to its default."""
    _known(services, service_id)
    changes = body.model_dump(exclude_unset=True)
    if changes.get("model"):
        # raises a validation LLMError (400) naming the known models
        capabilities_for(services.settings, changes["model"])
    return services.configs.update(service_id, changes)


@router.get("/prompts", response_model=list[PromptInfo])
def prompts() -> list[PromptInfo]:
    return [
        PromptInfo(
            name=p.name,
            service=p.service,
            description=p.description,
            has_variables=p.has_variables,
            system_or_user=p.system_or_user,
            version=p.version,
        )
        for p in list_prompts()
    ]


class ModelInfo(BaseModel):
    model: str
    endpoint: str
    in_capability_table: bool
    capabilities: dict[str, Any]
    override: dict[str, Any] | None = Field(
        None, description="CRYSTALLISE_MODEL_OVERRIDES for this model, as set"
    )
    dialect: dict[str, Any] | None = Field(
        None,
        description="What this process has learned from the endpoint about the model: the "
        "structured-output strategy in use, parameters dropped or renamed, in order",
    )


@router.get("/models/{model:path}", response_model=ModelInfo)
def get_model(model: str, services: ServicesDep) -> ModelInfo:
    """Capabilities in force for ``model`` on the configured endpoint, and its dialect."""
    if not 0 < len(model) <= 200:
        raise BadInput("model: a model name has 1 to 200 characters.")
    settings = services.settings
    caps = capabilities_for(settings, model)  # unknown here: a 400 naming the known models
    override = settings.model_overrides.get(model)
    return ModelInfo(
        model=model,
        endpoint=services.llm.base_url,
        in_capability_table=table_entry(model) is not None,
        capabilities=capabilities_dict(caps),
        override=override.model_dump(exclude_none=True) if override else None,
        dialect=services.llm.dialect_of(model),
    )
