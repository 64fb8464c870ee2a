"""Provenance of a job: what ran, on what, how, and what came of it (PRISMA 2020 item 8,
RAISE), with a methods paragraph generated from these facts, never by a model."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from typing import Any

from pydantic import BaseModel

from crystallise.db.jobs import JobKind, JobRow
from crystallise.errors import NotFound
from crystallise.indexer.spec import IndexerJobSpec
from crystallise.screening.prisma import prisma_counts
from crystallise.screening.schemas import ScreeningResult
from crystallise.screening.spec import ScreeningJobSpec
from crystallise.services import Services

# settings that shape a job's results or cost (never a key or a secret)
RELEVANT_SETTINGS = (
    "retired_model_policy",
    "adaptive_concurrency",
    "max_concurrent_requests",
    "allow_unknown_models",
    "structured_output",
    "model_overrides",
    "retry_delays",
    "request_timeout_s",
)


class Provenance(BaseModel):
    job_id: str
    kind: str
    status: str
    software: dict[str, str]
    model_requested: str | None  # None: the service's configured model
    model: str
    model_version: str | None
    prompt_versions: dict[str, str]
    admin_overrides: dict[str, Any]
    settings: dict[str, Any]
    parameters: dict[str, Any]
    counts: dict[str, int]
    cost_usd: float | None
    usage: dict[str, Any] | None
    timings: dict[str, Any]
    warnings: list[str]
    methods: str


def software_version() -> str:
    try:
        return version("crystallise")
    except PackageNotFoundError:
        return "unknown"


async def provenance(services: Services, kind: JobKind, job_id: str) -> Provenance:
    row = await services.store.get_job(kind, job_id)
    if row is None:
        raise NotFound(f"Job not found: {job_id}")
    spec = job_spec(kind, row)
    facts = Provenance(
        job_id=row.id,
        kind=kind,
        status=row.status,
        software={"crystallise": software_version()},
        model_requested=row.model if spec.model_explicit else None,
        model=row.model,
        model_version=row.model_version,
        prompt_versions=dict(spec.prompt_versions),
        admin_overrides=_overrides(spec),
        settings={k: getattr(services.settings, k) for k in RELEVANT_SETTINGS},
        parameters=_parameters(spec),
        counts=await _counts(services, row, spec),
        cost_usd=row.estimated_cost_usd,
        usage={k: v for k, v in (row.usage or {}).items() if k != "tally"} or None,
        timings={"duration_ms": row.duration_ms, **(getattr(row, "stage_timings", None) or {})},
        warnings=list(spec.warnings),
        methods="",
    )
    return facts.model_copy(update={"methods": methods_paragraph(facts)})


def job_spec(kind: JobKind, row: JobRow) -> ScreeningJobSpec | IndexerJobSpec:
    """The spec stored with a job, typed."""
    if kind == "screening":
        return row.spec(ScreeningJobSpec)
    return row.spec(IndexerJobSpec)


def _overrides(spec: ScreeningJobSpec | IndexerJobSpec) -> dict[str, Any]:
    """What an admin changed from the shipped defaults (prompt texts are versioned)."""
    versioned = "set (versioned in prompt_versions)"
    if isinstance(spec, IndexerJobSpec):
        return {"system_prompt": versioned} if spec.system_prompt else {}
    out: dict[str, Any] = {"label_system": versioned} if spec.label_system else {}
    if spec.temperature is not None:
        out["temperature"] = spec.temperature
    return out


def _parameters(spec: ScreeningJobSpec | IndexerJobSpec) -> dict[str, Any]:
    if isinstance(spec, IndexerJobSpec):
        return {"mode": spec.mode, "max_workers": spec.max_workers,
                "fields": [f.name for f in spec.fields]}  # fmt: skip
    return {
        "repetitions": spec.repetitions,
        "threshold": spec.threshold,
        "clusters_type": spec.clusters_type,
        "clustering_model": spec.clustering_model,
        "assignment_model": spec.assignment_model,
        "questions": list(spec.questions),
        "scoring": spec.scoring,
        "batch": spec.batch,
        "reuse": spec.reuse,
        "update_of": spec.update_of,
        "added_count": spec.added_count,
        "duplicate_count": spec.duplicate_count,
        "criteria_count": len(spec.criteria),
    }


async def _counts(
    services: Services, row: JobRow, spec: ScreeningJobSpec | IndexerJobSpec
) -> dict[str, int]:
    """Records processed, failed, and (screening) how many fall below the job's threshold."""
    items = await services.store.all_items(row.id)
    counts = {
        "records": row.item_count,
        "processed": sum(1 for i in items if i.status in ("done", "error")),
        "failed": sum(1 for i in items if i.status == "error"),
    }
    if isinstance(spec, ScreeningJobSpec):
        threshold = spec.threshold
        scores = [
            r.final_score for r in map(ScreeningResult.of, items) if r.final_score is not None
        ]
        counts["below_threshold"] = sum(1 for score in scores if score < threshold)
        counts["at_or_above_threshold"] = len(scores) - counts["below_threshold"]
        reasons = prisma_counts(items, threshold)["excluded_by_reason"]
        counts.update({f"excluded: {r['reason']}": r["count"] for r in reasons})
    return counts


def _reasons_sentence(counts: dict[str, int]) -> str:
    """The PRISMA 2020 exclusions by reason: the criterion each excluded record failed."""
    reasons = [
        (k.removeprefix("excluded: "), n) for k, n in counts.items() if k.startswith("excluded: ")
    ]
    if not reasons:
        return ""
    listed = "; ".join(f"{reason}: {n}" for reason, n in reasons)
    return (
        " Each excluded record was assigned the eligibility criterion it failed, from the "
        f"model's per-criterion verdicts (PRISMA 2020 exclusions by reason: {listed})."
    )


def methods_paragraph(p: Provenance) -> str:
    """Which tool, which model, how used: a paragraph for a methods section."""
    version_note = f" (version reported: {p.model_version})" if p.model_version else ""
    prompts = ", ".join(f"{k} {v}" for k, v in sorted(p.prompt_versions.items())) or "n/a"
    if p.kind == "screening":
        params = p.parameters
        if params.get("scoring") == "distribution":
            rated = (
                "from the probability the model gave each score in one answer (token "
                "log-probabilities; the expected score is the record's score, and records "
                "answered without them were rated by "
                f"{params['repetitions']} independent repetitions)"
            )
        else:
            rated = (
                f"{params['repetitions']} independent repetitions per record (the mean is the "
                "record's score)"
            )
        via = " through the provider's Batch API" if params.get("batch") else ""
        how = (
            f"Titles and abstracts of {p.counts['records']} records were rated 1-5{via} "
            f"against {params['criteria_count']} eligibility criteria, {rated}, with a "
            f"short justification per record; {p.counts['failed']} records could not be rated. "
            f"At the job's threshold of {params['threshold']:g}, {p.counts['below_threshold']} "
            f"records scored below and {p.counts['at_or_above_threshold']} at or above it."
            + _reasons_sentence(p.counts)
        )
    else:
        how = (
            f"Data items ({', '.join(str(f) for f in p.parameters['fields'])}) were extracted "
            f"from {p.counts['records']} records with a supporting quote per value, each quote "
            f"checked against the source text; {p.counts['failed']} records could not be "
            f"processed."
        )
    return (
        f"We used Crystallise {p.software['crystallise']} with the model {p.model}"
        f"{version_note}. {how} Prompts (name and version hash): {prompts}."
    )
