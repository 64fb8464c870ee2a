"""The decision endpoints' library side: size caps, the job-level calibrate, and the methods
paragraph (PRISMA 2020 items 8 and 16) built from the facts, never by a model."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from crystallise.config.limits import check_record_count
from crystallise.config.settings import Settings
from crystallise.db.async_jobs import AsyncJobStore
from crystallise.db.jobs import JobRow
from crystallise.decisions import schemas as s
from crystallise.decisions.agreement import Agreement, agreement, as_dict, report
from crystallise.decisions.calibrate import (
    Calibration,
    CalibrationFigures,
    ScoredRecord,
    calibrate,
)
from crystallise.decisions.stopping import consecutive_excludes, stopping
from crystallise.errors import BadInput
from crystallise.screening.assessment import exclusion_reason, failed
from crystallise.screening.schemas import ScreeningResult
from crystallise.screening.spec import ScreeningJobSpec

STOPPING_METHOD = (
    "Callaghan & Müller-Hansen (2020) hypergeometric test of H0 'recall < target', minimised "
    "over every window of most recently screened records (buscarR calculate_h0)."
)
HEURISTIC_METHOD = (
    "SAFE's consecutive-irrelevant heuristic (Boetje & van de Schoot 2024): stop after a run of "
    "excludes as long as 10% of the records (at least 50), once an include has been found. A "
    "heuristic without a statistical guarantee: in simulation it met 95% recall in every run on "
    "four of five labelled reviews and in 1 of 3 on the fifth (recall 0.943; evals/RESULTS.md)."
)
STOPPING_ASSUMPTIONS = (
    "Records were screened in the order given, ranked so that likely includes come first; the "
    "most recently screened records are treated as a random draw from themselves plus the "
    "unscreened remainder (conservative under a ranking that puts includes first). The "
    "recall estimate is found / (found + unscreened × the include rate of the last 10% "
    "screened, at least 20 records); the guarantee is the test, not the estimate."
)


def run_calibrate(settings: Settings, body: s.CalibrateRequest) -> s.CalibrateResponse:
    check_record_count(settings, "records", len(body.records))
    records = [
        ScoredRecord(r.id, list(r.scores or [r.final_score or 0.0]), r.label) for r in body.records
    ]
    return _response(
        calibrate(records, body.target_recall, body.confidence, tuple(body.rules)), body
    )


async def calibrate_job(
    store: AsyncJobStore, job_id: str, body: s.JobCalibrateRequest
) -> s.CalibrateResponse:
    """Calibrate a finished screening job on the caller's labels of a random sample."""
    row = await store.finished_job("screening", job_id, "calibrate")
    items = await store.all_items(job_id)
    scored = {i.item_id: ScreeningResult.of(i).scores for i in items}
    unknown = sorted(set(body.labels) - set(scored))
    if unknown:
        raise BadInput(f"labels: unknown record ids {unknown[:10]}")
    records = [
        ScoredRecord(item_id, [float(x) for x in scores], body.labels.get(item_id))
        for item_id, scores in scored.items()
        if scores
    ]
    result = await asyncio.to_thread(
        calibrate, records, body.target_recall, body.confidence, tuple(body.rules)
    )
    return _response(result, body, ScoredBy(row.spec(ScreeningJobSpec), row.model_version))


@dataclass(frozen=True)
class ScoredBy:
    """What scored a job's records, for the methods paragraph: its spec and model version."""

    spec: ScreeningJobSpec
    model_version: str | None


def _response(
    result: Calibration, body: s.Targets, job: ScoredBy | None = None
) -> s.CalibrateResponse:
    figures = result.model_dump(include=set(CalibrationFigures.model_fields))
    for key in ("recall_estimate", "recall_lower_bound"):
        figures[key] = _round(figures[key])
    figures["workload_reduction"] = round(result.workload_reduction, 4)
    return s.CalibrateResponse(
        **figures,
        target_recall=body.target_recall,
        confidence=body.confidence,
        rules_considered=list(result.rules),
        report=methods_report(result, body.target_recall, body.confidence, job),
    )


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def methods_report(
    result: Calibration, target: float, confidence: float, job: ScoredBy | None = None
) -> str:
    """A paragraph for a methods section, from the facts of this calibration."""
    model = ""
    if job:
        versions = ", ".join(f"{k} {v}" for k, v in sorted(job.spec.prompt_versions.items()))
        model = (
            f"Records were scored 1-5 by {job.spec.model} (version {job.model_version or 'n/a'}) "
            f"over {job.spec.repetitions} repetitions with Crystallise (prompts: "
            f"{versions or 'n/a'}). "
        )
    rules = ", ".join(result.rules)
    sample = (
        f"A simple random sample of {result.sample_size} of {result.total_records} records was "
        f"screened by humans and held {result.sample_includes} "
        f"include{'' if result.sample_includes == 1 else 's'}. "
    )
    if result.status != "ok":
        return (
            f"{model}{sample}This sample does not support an automatic exclusion threshold at "
            f"{target:.0%} recall with {confidence:.0%} confidence (rules tried: {rules}); about "
            f"{result.labels_needed} more randomly sampled labels are expected to be needed."
        )
    return (
        f"{model}{sample}Records whose {result.rule} score fell below {result.threshold:g} were "
        f"excluded by automation ({result.excluded_count} records, "
        f"{result.workload_reduction:.1%} of the total); all others went to human screening. "
        f"The threshold is the highest at which the one-sided Clopper-Pearson lower bound on "
        f"recall, computed from the sample's includes, reached the {target:.0%} target at "
        f"{confidence:.0%} confidence, Bonferroni-corrected over the {len(result.rules)} rules "
        f"tried ({rules}): estimated recall {result.recall_estimate:.3f}, lower bound "
        f"{result.recall_lower_bound:.3f}."
    )


async def run_prioritize(settings: Settings, body: s.PrioritizeRequest) -> s.PrioritizeResponse:
    check_record_count(settings, "records", len(body.records))
    from crystallise.decisions.prioritize import RankRecord, prioritize  # scikit-learn: lazy

    records = [RankRecord(r.id, r.title, r.abstract, r.label, r.score) for r in body.records]
    ranked = await asyncio.to_thread(prioritize, records)  # CPU work off the event loop
    return s.PrioritizeResponse(
        ranking=[s.RankedRecord(id=i, probability=p) for i, p in ranked.ranking],
        model=ranked.model,
        trained_on=ranked.trained_on,
    )


def run_stopping(settings: Settings, body: s.StoppingRequest) -> s.StoppingResponse:
    check_record_count(settings, "total_records", body.total_records)
    return stopping_response(
        [r.label for r in body.screened], body.total_records, body.target_recall, body.confidence
    )


def stopping_response(
    labels: list[int], total: int, target: float, confidence: float
) -> s.StoppingResponse:
    """Both stopping answers for ``labels`` in screening order: the test and the heuristic."""
    result = stopping(labels, total, target, confidence)
    figures = result.model_dump()
    figures["p_value"] = round(result.p_value, 6)
    figures["recall_estimate"] = _round(result.recall_estimate)
    heuristic = consecutive_excludes(labels, total)
    return s.StoppingResponse(
        **figures,
        assumptions=STOPPING_ASSUMPTIONS,
        method=STOPPING_METHOD,
        heuristic=s.HeuristicStopOut(**heuristic.model_dump(), method=HEURISTIC_METHOD),
    )


async def agreement_job(
    store: AsyncJobStore, job_id: str, body: s.AgreementRequest
) -> s.AgreementResponse:
    """The AI's decisions of a finished job against the human reviewers' labels."""
    row = await store.finished_job("screening", job_id, "compare")
    threshold = body.threshold if body.threshold is not None else _job_threshold(row)
    results = {i.item_id: ScreeningResult.of(i) for i in await store.all_items(job_id)}
    unknown = sorted({p for labels in body.reviewers.values() for p in labels} - set(results))
    if unknown:
        raise BadInput(f"reviewers: unknown paper ids {unknown[:10]}")
    ai = {
        p: int(r.final_score >= threshold) for p, r in results.items() if r.final_score is not None
    }
    if not any(set(ai) & set(labels) for labels in body.reviewers.values()):
        raise BadInput("reviewers: no paper that a reviewer decided has an AI decision")
    found = agreement(ai, body.reviewers)
    return _agreement_response(row, threshold, found, results, list(body.reviewers))


def _listed(pair: tuple[float, float] | None) -> list[float] | None:
    return list(pair) if pair else None


def _job_threshold(row: JobRow) -> float:
    return float(row.spec(ScreeningJobSpec).threshold)


def _agreement_response(
    row: JobRow,
    threshold: float,
    found: Agreement,
    results: dict[str, ScreeningResult],
    reviewers: list[str],
) -> s.AgreementResponse:
    disagreements = [
        _disagreement(p, ai_label, truth, results[p], threshold)
        for p, ai_label, truth in found.disagreements
    ]
    # highest risk first: a missed include, most confidently excluded first
    disagreements.sort(key=lambda d: (d.risk != "missed_include", d.final_score or 0.0))
    return s.AgreementResponse(
        job_id=row.id,
        threshold=threshold,
        pairs=[s.PairAgreementOut(**as_dict(p)) for p in found.pairs],
        ai_vs_consensus=s.AgainstConsensus(
            papers=found.consensus_n,
            conflicts=len(found.conflicts),
            conflict_ids=found.conflicts[:100],
            sensitivity=found.sensitivity,
            sensitivity_ci=_listed(found.sensitivity_ci),
            specificity=found.specificity,
            specificity_ci=_listed(found.specificity_ci),
        ),
        disagreements=disagreements,
        criteria=explained_by_criterion([(d.risk, results[d.id]) for d in disagreements]),
        report=report(found, threshold, row.model, reviewers),
    )


def _disagreement(
    paper: str, ai: int, truth: int, result: ScreeningResult, threshold: float
) -> s.Disagreement:
    reason = exclusion_reason(result, threshold)
    cited = next((a for a in result.criteria_assessment or [] if a.criterion == reason), None)
    return s.Disagreement(
        id=paper,
        ai=ai,
        consensus=truth,
        risk="missed_include" if truth == 1 else "extra_include",
        final_score=result.final_score,
        verdict=result.verdict,
        exclusion_reason=reason,
        quote=cited.quote if cited else None,
        quote_verified=cited.quote_verified if cited else None,
        decisive_criteria=[str(c) for c in result.decisive_criteria or []],
        reasoning=result.reasoning,
    )


def explained_by_criterion(
    disagreements: list[tuple[str, ScreeningResult]],
) -> list[s.CriterionDisagreements]:
    """Per criterion, the disagreements its verdict explains: a missed include the AI failed
    on it (an include criterion not met, an exclude criterion met), an extra include the AI
    judged to pass it; and those where its verdict was unclear. Results stored before the
    per-criterion assessment count their decisive criteria as explaining."""
    tally: dict[str, dict[str, int]] = {}

    def count(criterion: str, field: str) -> None:
        row = tally.setdefault(criterion, {"missed_includes": 0, "extra_includes": 0, "unclear": 0})
        row[field] += 1

    for risk, result in disagreements:
        field = "missed_includes" if risk == "missed_include" else "extra_includes"
        assessment = result.criteria_assessment
        if not assessment:
            for criterion in result.decisive_criteria or []:
                count(str(criterion), field)
            continue
        failing = {a.criterion for a in failed(assessment)}
        for a in assessment:
            if a.verdict == "unclear":
                count(a.criterion, "unclear")
            elif (a.criterion in failing) == (risk == "missed_include"):
                count(a.criterion, field)
    rows = [
        s.CriterionDisagreements(
            criterion=c, disagreements=n["missed_includes"] + n["extra_includes"], **n
        )
        for c, n in tally.items()
    ]
    return sorted(rows, key=lambda r: (-r.disagreements, -r.unclear, r.criterion))
