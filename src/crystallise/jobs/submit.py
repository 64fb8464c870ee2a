"""Library entry points for submitting work: ``submit_screening`` and ``submit_indexing``.

Each validates the request, prices it and enforces its cost ceiling, snapshots the service
config and every prompt version the job can use, applies the key policy and idempotency,
stores the typed job spec and dispatches the job. Routes, benchmarks, evals and tests all
submit through here; no job config is assembled anywhere else.
"""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel
from sqlalchemy.exc import IntegrityError

from crystallise.config.limits import check_record_count
from crystallise.config.model_capabilities import (
    ModelChoice,
    capabilities_for,
    choose_model,
    table_entry,
)
from crystallise.config.settings import Settings
from crystallise.db.jobs import JobKind, JobRow
from crystallise.errors import BadInput, Conflict
from crystallise.indexer import mock as indexer_mock
from crystallise.indexer.estimate import DISCLAIMER as INDEXING_DISCLAIMER
from crystallise.indexer.estimate import estimate_indexing
from crystallise.indexer.pipeline import errors_of, run_records
from crystallise.indexer.schemas import (
    IndexerEstimateRequest,
    IndexerEstimateResponse,
    IndexerRequest,
    IndexerRunResponse,
)
from crystallise.indexer.spec import IndexerJobSpec
from crystallise.jobs.budget import check_budget
from crystallise.jobs.engine.spec import JobSpec, prompt_versions
from crystallise.jobs.resume import key_source
from crystallise.llm.ask import plan_model
from crystallise.llm.cost import reasoning_per_answer
from crystallise.llm.tokens import estimate_text_tokens
from crystallise.screening.criteria import normalise_criteria
from crystallise.screening.estimate import DISCLAIMER as SCREENING_DISCLAIMER
from crystallise.screening.estimate import estimate_screening, format_usd
from crystallise.screening.reuse import reuse_keys
from crystallise.screening.schemas import EstimateRequest, EstimateResponse, ScreeningRequest
from crystallise.screening.spec import ScreeningJobSpec
from crystallise.services import Services
from crystallise.tenancy import job_owner

MAX_IDEMPOTENCY_KEY = 255


@dataclass(frozen=True)
class Submission:
    """How the caller identifies the request: its key (if any) and Idempotency-Key."""

    request_key: str | None = None
    idempotency_key: str | None = None
    dispatch: bool = True  # False: store the job only (a later start-up or worker runs it)


def screening_models(services: Services, requested: str | None) -> tuple[ModelChoice, ...]:
    """The labelling and clustering models that will run (400 if unknown or refused)."""
    settings, configs = services.settings, services.configs
    main = choose_model(settings, requested, configs.get("screening").model, "screening")
    clustering = configs.get("screening.clustering").model
    return main, choose_model(settings, None, clustering, "screening.clustering")


def extraction_model(services: Services, requested: str | None) -> ModelChoice:
    """The extraction model that will run (400 if unknown or refused)."""
    configured = services.configs.get("extraction").model
    return choose_model(services.settings, requested, configured, "extraction")


def model_warnings(*choices: ModelChoice) -> list[str]:
    return [c.warning for c in choices if c.warning]


def check_job_size(services: Services, field: str, count: int) -> None:
    check_record_count(services.settings, field, count, noun=field, hint="; split the job.")


def check_scoring(settings: Settings, model: str, scoring: str) -> str:
    """400 when distribution scoring is asked of a model known to return no log-probabilities
    (a model outside the table may: it is tried, and papers fall back to samples)."""
    caps = capabilities_for(settings, model)
    if scoring == "distribution" and not caps.supports_logprobs and table_entry(model):
        raise BadInput(
            f"scoring: 'distribution' reads token log-probabilities, which '{model}' does not "
            "return; use 'samples', or a model that returns them (the gpt-4.1 family, most "
            "local servers; CRYSTALLISE_MODEL_OVERRIDES can declare supports_logprobs)"
        )
    return scoring


def screening_spec(
    services: Services, body: ScreeningRequest, measured_reasoning: float | None = None
) -> tuple[ScreeningJobSpec, float, list[str | None] | None]:
    """The job spec the request stands for, its estimated cost (400 over the ceiling) and
    each paper's reuse key (screening/reuse.py; None for a mock job). The estimate prices
    only the papers it will not reuse; ``measured_reasoning``: hidden reasoning tokens per
    answer from recent jobs."""
    check_job_size(services, "papers", len(body.papers))
    main, clustering = screening_models(services, body.model)
    config = services.configs.get("screening")
    label_system = services.configs.system_override("screening")
    spec = ScreeningJobSpec(
        model=main.model,
        model_explicit=main.explicit,
        clustering_model=clustering.model,
        assignment_model=services.settings.assignment_model or main.model,
        warnings=model_warnings(main, clustering),
        criteria=normalise_criteria(body.criteria),
        questions=body.questions,
        repetitions=body.repetitions,
        threshold=body.threshold,
        clusters_type=body.clusters_type,
        label_system=label_system,
        temperature=config.temperature,
        prompt_versions=_versions("screening.", "screening.labelling", label_system),
        scoring=check_scoring(services.settings, main.model, body.scoring),
        batch=body.batch,
        reuse=body.reuse,
    )
    keys = None if body.mock else reuse_keys(body.papers, spec, job_owner())
    reused = services.jobs.count_reusable([k for k in keys if k]) if keys and body.reuse else 0
    cost = _screening_cost(services, body, spec, measured_reasoning, reused)
    _check_ceiling(cost, body.max_estimated_cost_usd)
    return spec, cost, keys


def _screening_cost(
    services: Services,
    body: ScreeningRequest,
    spec: ScreeningJobSpec,
    measured_reasoning: float | None,
    reused: int,
) -> float:
    estimate = estimate_screening(
        model=spec.model,
        clustering_model=spec.clustering_model,
        assignment_model=spec.assignment_model,
        papers_count=len(body.papers),
        repetitions=body.repetitions,
        criteria_count=len(spec.criteria),
        paper_tokens_total=sum(
            estimate_text_tokens(f"{p.title} {p.abstract}") for p in body.papers
        ),
        capabilities=capabilities_for(services.settings, spec.model),
        scoring=spec.scoring,
        batch=body.batch,
        measured_reasoning=measured_reasoning,
        reused=reused,
    )
    return estimate.estimated_cost_usd


def indexer_spec(
    services: Services, body: IndexerRequest
) -> tuple[IndexerJobSpec, float, list[str | None] | None]:
    check_job_size(services, "records", len(body.records))
    choice = extraction_model(services, body.model)
    system_prompt = services.configs.system_override("extraction")
    versions = _versions("indexer.extraction", "indexer.extraction", system_prompt)
    spec = IndexerJobSpec(
        model=choice.model,
        model_explicit=choice.explicit,
        warnings=model_warnings(choice),
        fields=body.fields,
        project_context=body.project_context,
        system_prompt=system_prompt,
        mode=body.mode,
        max_workers=body.max_workers,
        prompt_versions=versions,
    )
    estimate = estimate_indexing(choice.model, body.fields, len(body.selected_records()))
    return spec, estimate.estimated_cost_usd, None


def _versions(prefix: str, overridable: str, override: str | None) -> dict[str, str]:
    """The registry's versions of the job's prompts; an admin override of one prompt's
    system text is versioned by its own hash."""
    versions = prompt_versions(prefix)
    if override is not None:
        versions[overridable] = f"override-{hashlib.sha256(override.encode()).hexdigest()[:12]}"
    return versions


def _check_ceiling(cost: float, ceiling: float | None) -> None:
    if ceiling is not None and cost > ceiling:
        raise BadInput(
            f"Estimated cost {format_usd(cost)} exceeds max_estimated_cost_usd="
            f"{format_usd(ceiling)}"
        )


async def submit_screening(
    services: Services,
    body: ScreeningRequest,
    submission: Submission | None = None,
    lineage: dict[str, Any] | None = None,
) -> JobRow:
    """Validate, price, store and dispatch a screening job (or return the idempotent one);
    ``lineage``: an update's ``update_of``, ``added_count`` and ``duplicate_count``."""
    main, _ = screening_models(services, body.model)
    tallies = await services.store.recent_usage_tallies(main.model)
    measured = reasoning_per_answer(tallies, main.model)

    def prepare() -> tuple[JobSpec, float, list[str | None] | None]:
        spec, cost, keys = screening_spec(services, body, measured)
        return spec.model_copy(update=lineage or {}), cost, keys

    return await _submit(
        services,
        "screening",
        body,
        submission or Submission(),
        prepare,
        lambda: [(p.id, p.model_dump(exclude_none=True)) for p in body.papers],
    )


async def submit_indexing(
    services: Services, body: IndexerRequest, submission: Submission | None = None
) -> JobRow:
    """Validate, price, store and dispatch an indexer job (or return the idempotent one)."""
    return await _submit(
        services,
        "indexer",
        body,
        submission or Submission(),
        lambda: indexer_spec(services, body),
        lambda: [(str(r["ID"]).strip(), r) for r in body.selected_records()],
    )


async def _submit(
    services: Services,
    kind: JobKind,
    body: ScreeningRequest | IndexerRequest,
    submission: Submission,
    prepare: Callable[[], tuple[JobSpec, float, list[str | None] | None]],
    items: Callable[[], list[tuple[str, dict[str, Any]]]],
) -> JobRow:
    existing = await find_idempotent(services, kind, submission, body)
    if existing is not None:
        return existing
    # token counting, config and reuse lookups: off the event loop
    spec, cost, keys = await asyncio.to_thread(prepare)
    return await store_and_dispatch(
        services, kind, body, submission, spec, items(),
        cost=cost, project_id=body.project_id, reuse_keys=keys,
    )  # fmt: skip


# ---- idempotency, key policy, storage and dispatch ----------------------------------------
def request_fingerprint(body: BaseModel) -> str:
    """Hash of the request body: the same Idempotency-Key must come with the same body."""
    return hashlib.sha256(body.model_dump_json().encode()).hexdigest()


def _same_or_conflict(row: JobRow, body: BaseModel) -> JobRow:
    if row.request_hash != request_fingerprint(body):
        raise Conflict("Idempotency-Key was already used with a different request body.")
    return row


async def find_idempotent(
    services: Services, kind: JobKind, submission: Submission, body: BaseModel
) -> JobRow | None:
    """The job an earlier request with this Idempotency-Key created (409 if the body differs)."""
    key = submission.idempotency_key
    if key is None:
        return None
    if not key.strip() or len(key) > MAX_IDEMPOTENCY_KEY:
        raise BadInput(f"Idempotency-Key must be 1-{MAX_IDEMPOTENCY_KEY} characters")
    row = await services.store.find_by_idempotency_key(kind, key)
    return _same_or_conflict(row, body) if row is not None else None


async def store_and_dispatch(
    services: Services,
    kind: JobKind,
    body: Any,
    submission: Submission,
    spec: JobSpec,
    items: list[tuple[str, dict[str, Any]]],
    *,
    cost: float,
    project_id: int | None,
    reuse_keys: list[str | None] | None = None,
) -> JobRow:
    """Store the job (its per-request key only encrypted, if a secret is set) and start it."""
    source = key_source(services, bool(body.mock), submission.request_key)
    await check_budget(services, cost, source)
    key = submission.request_key if source == "request" else None
    box = services.secret_box
    try:
        row = await services.store.create_job(
            kind,
            job_id=str(uuid.uuid4()),
            items=items,
            project_id=project_id,
            model=spec.model,
            mock=bool(body.mock),
            config=spec.model_dump(mode="json"),
            estimated_cost_usd=cost,
            key_source=source,
            idempotency_key=submission.idempotency_key,
            request_hash=request_fingerprint(body),
            encrypted_openai_key=box.encrypt(key) if key and box is not None else None,
            reuse_keys=reuse_keys,
        )
    except IntegrityError:
        # a concurrent request with the same Idempotency-Key won the race
        existing = await services.store.find_by_idempotency_key(
            kind, submission.idempotency_key or ""
        )
        if existing is None:
            raise
        return _same_or_conflict(existing, body)
    if submission.dispatch:
        await services.dispatcher.dispatch(kind, row.id, key)
    return row


async def run_indexing(
    services: Services, body: IndexerRequest, request_key: str | None
) -> IndexerRunResponse:
    """``POST /v1/indexer/run``: extraction now, in the request (small batches); the size
    cap, model choice and key policy of a job apply."""
    check_job_size(services, "records", len(body.records))
    choice = extraction_model(services, body.model)
    if body.mock:
        results, usage, version = indexer_mock.run_records(body)
    else:
        key_source(services, False, request_key)
        plan = plan_model(services.settings, choice.model)
        override = services.configs.system_override("extraction")
        results, usage, version = await run_records(services.llm, plan, body, request_key, override)
    return IndexerRunResponse(
        results=results,
        errors=errors_of(results),
        usage=usage,
        model_version=version,
        model=choice.model,
        warnings=model_warnings(choice) or None,
    )


def estimate_screening_job(services: Services, body: EstimateRequest) -> EstimateResponse:
    """``POST /v1/screening/estimate``: the price of a job before it is sent, with the
    models, scoring and measured hidden reasoning a submission would use. Synchronous (it
    reads recent usage from the database): call it off the event loop."""
    main, clustering = screening_models(services, body.model)
    figures = estimate_screening(
        model=main.model,
        clustering_model=clustering.model,
        assignment_model=services.settings.assignment_model or main.model,
        papers_count=body.papers_count,
        repetitions=body.repetitions,
        criteria_count=body.criteria_count,
        capabilities=capabilities_for(services.settings, main.model),
        scoring=check_scoring(services.settings, main.model, body.scoring),
        batch=body.batch,
        measured_reasoning=reasoning_per_answer(
            services.jobs.recent_usage_tallies(main.model), main.model
        ),
    )
    return EstimateResponse(
        **figures.model_dump(exclude={"calls"}),
        model=main.model,
        warnings=model_warnings(main, clustering) or None,
        papers_count=body.papers_count,
        repetitions=body.repetitions,
        disclaimer=SCREENING_DISCLAIMER,
    )


def estimate_indexing_job(
    services: Services, body: IndexerEstimateRequest
) -> IndexerEstimateResponse:
    """``POST /v1/indexer/estimate``: the price of an extraction before it is sent."""
    choice = extraction_model(services, body.model)
    figures = estimate_indexing(choice.model, body.fields, body.record_count)
    return IndexerEstimateResponse(
        **figures.model_dump(),
        model=choice.model,
        warnings=model_warnings(choice) or None,
        disclaimer=INDEXING_DISCLAIMER,
    )
