"""Provenance of a job: what ran, on what, how, and what came of it (PRISMA 2020 item 8,
RAISE), with a methods paragraph generated from these facts, never by a model."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from typing import Any

from pydantic import BaseModel

from crystallise.db.jobs import JobKind, JobRow
from crystallise.errors import NotFound
from crystallise.screening.prisma import prisma_counts
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
    config = row.config or {}
    counts = await _counts(services, kind, row, config)
    overrides = {
        k: "set (versioned in prompt_versions)"
        for k in ("label_system", "system_prompt")
        if config.get(k)
    }
    if config.get("temperature") is not None:
        overrides["temperature"] = config["temperature"]
    facts = Provenance(
        job_id=row.id,
        kind=kind,
        status=row.status,
        software={"crystallise": software_version()},
        model_requested=row.model if config.get("model_explicit") else None,
        model=row.model,
        model_version=row.model_version,
        prompt_versions=dict(config.get("prompt_versions") or {}),
        admin_overrides=overrides,
        settings={k: getattr(services.settings, k) for k in RELEVANT_SETTINGS},
        parameters=_parameters(kind, config),
        counts=counts,
        cost_usd=row.estimated_cost_usd,
        usage={k: v for k, v in (row.usage or {}).items() if k != "tally"} or None,
        timings={"duration_ms": row.duration_ms, **(getattr(row, "stage_timings", None) or {})},
        warnings=list(config.get("warnings") or []),
        methods="",
    )
    return facts.model_copy(update={"methods": methods_paragraph(facts)})


def _parameters(kind: JobKind, config: dict[str, Any]) -> dict[str, Any]:
    keys = (
        (
            "repetitions",
            "threshold",
            "clusters_type",
            "clustering_model",
            "assignment_model",
            "questions",
            "scoring",
            "batch",
            "reuse",
            "update_of",
            "added_count",
            "duplicate_count",
        )
        if kind == "screening"
        else ("mode", "max_workers")
    )
    params = {k: config.get(k) for k in keys}
    if kind == "screening":
        params["criteria_count"] = len(config.get("criteria") or [])
        params["scoring"] = params["scoring"] or "samples"  # jobs stored before the option
        params["batch"] = bool(params["batch"])
    else:
        params["fields"] = [f.get("name") for f in config.get("fields") or []]
    return params


async def _counts(
    services: Services, kind: JobKind, row: JobRow, config: dict[str, Any]
) -> dict[str, int]:
    """Records processed, failed, and (screening) how many fall below the job's threshold."""
    items = await services.store.all_items(row.id)
    results = [i.result or {} for i in items]
    counts = {
        "records": row.item_count,
        "processed": sum(1 for i in items if i.status in ("done", "error")),
        "failed": sum(1 for i in items if i.status == "error"),
    }
    if kind == "screening":
        threshold = float(config.get("threshold") or 0)
        scored = [r for r in results if "final_score" in r]
        counts["below_threshold"] = sum(1 for r in scored if r["final_score"] < threshold)
        counts["at_or_above_threshold"] = len(scored) - counts["below_threshold"]
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
