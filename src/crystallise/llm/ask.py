"""One way to ask the model: a ``ModelPlan`` resolves, once, the model that will run and
what it accepts (temperature, reasoning effort, ``n``, output cap) from the service config,
the admin overrides and the capability table; ``ask`` sends a call under that plan. Every
pipeline and helper calls through here."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TypeVar

from crystallise.config.model_capabilities import capabilities_for, choose_model
from crystallise.config.registry import ConfigRegistry
from crystallise.config.settings import Settings
from crystallise.llm.answers import ChatResult
from crystallise.llm.client import LLMClient
from crystallise.llm.cost import tally_usage
from crystallise.prompts.base import Prompt

T = TypeVar("T")


@dataclass(frozen=True)
class ModelPlan:
    model: str
    temperature: float | None = None  # None: the model's default sampling (or it takes none)
    reasoning_effort: str | None = None  # the lowest effort the model offers, if any
    max_output_tokens: int | None = None
    supports_n: bool = False
    system: str | None = None  # the admin's system prompt for this service, if overridden


def plan_model(
    settings: Settings,
    model: str,
    *,
    temperature: float | None = None,
    max_output_tokens: int | None = None,
    system: str | None = None,
    lowest_effort: bool = False,
) -> ModelPlan:
    """What a call to ``model`` may carry, from the capability table. ``lowest_effort``
    asks reasoning models for minimal hidden reasoning (high-volume, simple judgements)."""
    caps = capabilities_for(settings, model)
    minimal = lowest_effort and "minimal" in caps.reasoning_efforts
    cap = min(max_output_tokens, caps.max_output_tokens) if max_output_tokens else None
    return ModelPlan(
        model=model,
        temperature=temperature if caps.supports_temperature else None,
        reasoning_effort="minimal" if minimal else None,
        max_output_tokens=cap,
        supports_n=caps.supports_n,
        system=system,
    )


def plan_service(
    settings: Settings,
    configs: ConfigRegistry,
    service_id: str,
    requested: str | None,
    prompt: Prompt | None = None,
) -> ModelPlan:
    """The plan of one service call: the request's model or the service's (retirement
    policy applied), its configured temperature and output cap, and its system override."""
    config = configs.get(service_id)
    model = choose_model(settings, requested, config.model, service_id).model
    overridden = prompt is not None and config.prompt_template_id == prompt.name
    return plan_model(
        settings,
        model,
        temperature=config.temperature,
        max_output_tokens=config.max_output_tokens,
        system=config.system_prompt if overridden else None,
    )


async def ask(
    llm: LLMClient,
    plan: ModelPlan,
    messages: list[dict[str, Any]],
    *,
    request_key: str | None,
    **kw: Any,
) -> ChatResult:
    """One call under ``plan``; ``kw`` (schema, tools, ``n``, a tighter output cap, cache
    key) goes to ``LLMClient.chat``."""
    kw.setdefault("max_output_tokens", plan.max_output_tokens)
    if plan.reasoning_effort:
        kw.setdefault("reasoning_effort", plan.reasoning_effort)
    return await llm.chat(
        messages, model=plan.model, temperature=plan.temperature, request_key=request_key, **kw
    )


@dataclass(frozen=True)
class HelperContext:
    """What a synchronous AI helper (criteria help, the indexer's field and tag help) needs:
    the model gateway, the service config, and the caller's own key if one came."""

    llm: LLMClient
    configs: ConfigRegistry
    request_key: str | None = None


async def ask_structured(
    ctx: HelperContext,
    service_id: str,
    prompt: Prompt,
    output: type[T],
    model: str | None,
    **values: str,
) -> tuple[T, dict[str, Any]]:
    """One structured answer from a service: the service's plan (its model unless the request
    names one, its temperature, cap and system override), the prompt's system and user
    message rendered with ``values``; the parsed answer and its usage tally."""
    plan = plan_service(ctx.llm.settings, ctx.configs, service_id, model, prompt)
    messages = [
        {"role": "system", "content": plan.system or prompt.system or ""},
        {"role": "user", "content": prompt.render_user(**values)},
    ]
    result = await ask(ctx.llm, plan, messages, output_schema=output, request_key=ctx.request_key)
    parsed: T = result.parsed
    return parsed, tally_usage(plan.model, [result.usage])
