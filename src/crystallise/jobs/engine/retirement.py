"""Models of a stored job, checked again when it runs: a job queued before a model's
shutdown date and run after it moves to the successor (or fails) under the same policy
as a new request."""

from __future__ import annotations

from typing import TypeVar

from crystallise.config.model_capabilities import choose_model
from crystallise.config.settings import Settings
from crystallise.jobs.engine.runner import JobContext
from crystallise.jobs.engine.spec import JobSpec

S = TypeVar("S", bound=JobSpec)


async def current_models(
    ctx: JobContext, settings: Settings, spec: S, fields: tuple[str, ...]
) -> S:
    """``spec`` with each model field resolved for today (the first is the job's main model,
    named explicitly by the caller when ``spec.model_explicit``; the others are service
    defaults). Any change is stored on the job with a warning. Raises the ``validation``
    LLMError of a refused model, which fails the job."""
    changed: dict[str, str] = {}
    warnings = list(spec.warnings)
    for i, name in enumerate(fields):
        stored = str(getattr(spec, name))
        explicit = spec.model_explicit and i == 0
        choice = choose_model(settings, stored if explicit else None, stored)
        if choice.warning:
            changed[name] = choice.model
            if choice.warning not in warnings:
                warnings.append(choice.warning)
    if not changed:
        return spec
    updated = spec.model_copy(update={**changed, "warnings": warnings})
    config = updated.model_dump(mode="json")
    await ctx.store.update_job(ctx.kind, ctx.job_id, config=config, model=updated.model)
    return updated
