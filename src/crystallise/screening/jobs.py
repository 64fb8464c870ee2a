"""The screening job function the runner executes (real or mock, from the stored config)."""

from __future__ import annotations

from crystallise.batch.models import current_models
from crystallise.batch.runner import JobContext, JobFunction, JobOutcome
from crystallise.screening.criteria import Criterion
from crystallise.screening.mock import mock_screen_papers
from crystallise.screening.pipeline import ScreeningSpec, screen_papers
from crystallise.services import Services


def spec_from_config(job_id: str, config: dict[str, object]) -> ScreeningSpec:
    criteria = [Criterion(**c) for c in config.get("criteria", [])]  # type: ignore[arg-type, attr-defined]
    return ScreeningSpec(
        job_id=job_id,
        criteria=criteria,
        questions=list(config.get("questions", [])),  # type: ignore[call-overload]
        model=str(config["model"]),
        clustering_model=str(config["clustering_model"]),
        repetitions=int(config["repetitions"]),  # type: ignore[call-overload]
        threshold=float(config["threshold"]),  # type: ignore[arg-type]
        clusters_type=config.get("clusters_type"),  # type: ignore[arg-type]
        label_system=config.get("label_system"),  # type: ignore[arg-type]
        temperature=config.get("temperature"),  # type: ignore[arg-type]
    )


def make_screening_job(services: Services) -> JobFunction:
    async def run(ctx: JobContext) -> JobOutcome:
        job = ctx.store.get_job("screening", ctx.job_id)
        assert job is not None
        explicit = bool(job.config.get("model_explicit", False))
        config = current_models(
            ctx, services.settings, job.config, {"model": explicit, "clustering_model": False}
        )
        spec = spec_from_config(ctx.job_id, config)
        if job.mock:
            return await mock_screen_papers(ctx, spec)
        return await screen_papers(ctx, spec, services.llm)

    return run
