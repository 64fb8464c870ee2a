"""The screening job function the runner executes (real or mock, from the stored spec)."""

from __future__ import annotations

from crystallise.batch.models import current_models
from crystallise.batch.runner import JobContext, JobFunction, JobOutcome
from crystallise.jobs.specs import ScreeningJobSpec, load_spec
from crystallise.screening.mock import mock_screen_papers
from crystallise.screening.pipeline import screen_papers
from crystallise.services import Services


def make_screening_job(services: Services) -> JobFunction:
    async def run(ctx: JobContext) -> JobOutcome:
        job = ctx.row
        assert job is not None
        spec = load_spec(ScreeningJobSpec, job.model, job.config)
        fields: tuple[str, ...] = ("model", "clustering_model")
        if spec.assignment_model:  # jobs stored before it existed have none
            fields += ("assignment_model",)
        spec = await current_models(ctx, services.settings, spec, fields)
        if job.mock:
            return await mock_screen_papers(ctx, spec, services.settings.mock_delay_s)
        return await screen_papers(ctx, spec, services.llm)

    return run
