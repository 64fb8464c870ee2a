"""Models of a stored job, checked again when it runs: a job queued before a model's
shutdown date and run after it moves to the successor (or fails) under the same policy
as a new request."""

from __future__ import annotations

from typing import Any

from crystallise.batch.runner import JobContext
from crystallise.config.model_capabilities import ModelChoice, choose_model
from crystallise.config.settings import Settings


def current_models(
    ctx: JobContext, settings: Settings, config: dict[str, Any], fields: dict[str, bool]
) -> dict[str, Any]:
    """``config`` with each of ``fields`` (config key -> named explicitly by the caller?)
    resolved for today; any change is stored on the job with a warning. Raises the
    ``validation`` LLMError of a refused model, which fails the job."""
    choices: dict[str, ModelChoice] = {
        key: choose_model(settings, config[key] if explicit else None, str(config[key]))
        for key, explicit in fields.items()
    }
    changed = {k: c for k, c in choices.items() if c.warning}
    if not changed:
        return config
    warnings = list(config.get("warnings") or [])
    warnings += [c.warning for c in changed.values() if c.warning and c.warning not in warnings]
    updated = {**config, **{k: c.model for k, c in changed.items()}, "warnings": warnings}
    main = next(iter(fields))
    ctx.store.update_job(ctx.kind, ctx.job_id, config=updated, model=updated[main])
    return updated
