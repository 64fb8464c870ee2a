"""Configuration API: service configs (persisted overrides) and the prompt registry."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from crystallise.api.deps import ServicesDep, require_admin_key
from crystallise.config.registry import ServiceConfig, ServiceConfigUpdate
from crystallise.llm.model_info import ModelInfo, describe_model
from crystallise.prompts.registry import PromptInfo, prompt_infos

router = APIRouter(prefix="/config", tags=["config"])


@router.get("/services", response_model=list[ServiceConfig])
def list_services(services: ServicesDep) -> list[ServiceConfig]:
    return services.configs.stored()


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
    return services.configs.apply(services.settings, service_id, body)


@router.get("/prompts", response_model=list[PromptInfo])
def prompts() -> list[PromptInfo]:
    return prompt_infos()


@router.get("/models/{model:path}", response_model=ModelInfo)
def get_model(model: str, services: ServicesDep) -> ModelInfo:
    """Capabilities in force for ``model`` on the configured endpoint, and its dialect."""
    return describe_model(services.llm, model)
