"""The screening job function the runner executes (real or mock, from the stored spec)."""

from __future__ import annotations

from crystallise.config.settings import Settings
from crystallise.jobs.engine.retirement import current_models
from crystallise.jobs.engine.runner import JobContext, JobFunction, JobOutcome
from crystallise.llm.client import LLMClient
from crystallise.screening.mock import mock_screen_papers
from crystallise.screening.pipeline import screen_papers
from crystallise.screening.spec import ScreeningJobSpec


def make_screening_job(settings: Settings, llm: LLMClient) -> JobFunction:
    async def run(ctx: JobContext) -> JobOutcome:
        job = ctx.row
        assert job is not None
        spec = job.spec(ScreeningJobSpec)
        fields: tuple[str, ...] = ("model", "clustering_model")
        if spec.assignment_model:  # jobs stored before it existed have none
            fields += ("assignment_model",)
        spec = await current_models(ctx, settings, spec, fields)
        if job.mock:
            return await mock_screen_papers(ctx, spec, settings.mock_delay_s)
        return await screen_papers(ctx, spec, llm)

    return run
