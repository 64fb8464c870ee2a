"""What this deployment knows of a model: its capabilities in force on the configured
endpoint, the operator's override, and the dialect the gateway has learned for it."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from crystallise.config.model_capabilities import capabilities_dict, capabilities_for, table_entry
from crystallise.errors import BadInput
from crystallise.llm.client import LLMClient


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


def describe_model(llm: LLMClient, model: str) -> ModelInfo:
    """``GET /v1/config/models/{model}``; an unknown model is a 400 naming the known ones."""
    if not 0 < len(model) <= 200:
        raise BadInput("model: a model name has 1 to 200 characters.")
    settings = llm.settings
    caps = capabilities_for(settings, model)
    override = settings.model_overrides.get(model)
    return ModelInfo(
        model=model,
        endpoint=llm.base_url,
        in_capability_table=table_entry(model) is not None,
        capabilities=capabilities_dict(caps),
        override=override.model_dump(exclude_none=True) if override else None,
        dialect=llm.dialect_of(model),
    )
