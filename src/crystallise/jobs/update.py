"""Updating a screening job with a re-run search (living reviews): ``POST
/v1/screening/jobs/{id}/update`` with the new export's papers makes a new job holding the old
papers and the new ones, the new deduplicated against the old by DOI, PMID and normalised
title + year (the import's dedup). The old job's options apply; its papers reuse their
results (screening/reuse.py), the new ones are screened, and themes are derived again for the
whole set (a few theme calls, and one assignment call per 25 papers)."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from crystallise.db.jobs import JobRow
from crystallise.errors import BadInput
from crystallise.jobs.submit import Submission, submit_screening
from crystallise.records.parse import _title_key
from crystallise.screening.criteria import CriterionInput
from crystallise.screening.schemas import Paper, ScreeningRequest
from crystallise.screening.spec import ScreeningJobSpec
from crystallise.services import Services


def _dedup_keys(paper: dict[str, Any]) -> list[str]:
    keys = []
    if paper.get("doi"):
        keys.append(f"doi:{str(paper['doi']).lower()}")
    if paper.get("pmid"):
        keys.append(f"pmid:{paper['pmid']}")
    title = _title_key(str(paper.get("title") or ""))
    if len(title) >= 10:
        keys.append(f"title:{title}|{paper.get('year') or ''}")
    return keys


def split_new(
    old: list[dict[str, Any]], new: list[Paper], strict_ids: bool = True
) -> tuple[list[Paper], list[str]]:
    """The new papers that are not in the old set, and the ids of those that are
    (``strict_ids``: a new paper may not reuse an old paper's id; files number records)."""
    seen = {key for paper in old for key in _dedup_keys(paper)}
    old_ids = {str(p.get("id")) for p in old}
    added: list[Paper] = []
    duplicates: list[str] = []
    for paper in new:
        keys = _dedup_keys(paper.model_dump(exclude_none=True))
        if any(key in seen for key in keys):
            duplicates.append(paper.id)
            continue
        if strict_ids and paper.id in old_ids:
            raise BadInput(f"papers: id {paper.id!r} is already a different paper of the job")
        seen.update(keys)
        added.append(paper)
    return added, duplicates


def _criteria(spec: ScreeningJobSpec) -> list[CriterionInput]:
    """The old job's criteria in the request's shape (normalising them again is stable)."""
    out = []
    for c in spec.criteria:
        value = c.text.removeprefix(f"{c.name}: ") if c.name else c.text
        out.append(CriterionInput(name=c.name or None, type=c.kind, value=value))
    return out


async def submit_update(
    services: Services, job_id: str, papers: list[Paper], submission: Submission
) -> tuple[JobRow, dict[str, Any]]:
    """The new job, and what was added, what duplicated an old paper, what can be reused."""
    row = await services.store.finished_job("screening", job_id, "update it")
    spec = row.spec(ScreeningJobSpec)
    old = [item.input for item in await services.store.all_items(job_id)]
    added, duplicates = split_new(old, papers)
    try:
        body = _merged_request(row, spec, [Paper.model_validate(p) for p in old] + added)
    except ValidationError as exc:  # the merged set breaks a request rule: the caller's 400
        raise BadInput(f"papers: {exc.errors()[0]['msg']}") from None
    lineage = {"update_of": job_id, "added_count": len(added), "duplicate_count": len(duplicates)}
    created = await submit_screening(services, body, submission, lineage=lineage)
    return created, {**lineage, "duplicate_ids": duplicates[:1000]}


def _merged_request(row: JobRow, spec: ScreeningJobSpec, papers: list[Paper]) -> ScreeningRequest:
    """The old job's setup over the old papers and the new."""
    return ScreeningRequest(
        papers=papers,
        criteria=_criteria(spec),
        questions=spec.questions,
        model=spec.model if spec.model_explicit else None,
        repetitions=spec.repetitions,
        threshold=spec.threshold,
        clusters_type=spec.clusters_type,
        project_id=row.project_id,
        mock=row.mock,
        scoring=spec.scoring,
        batch=spec.batch,
        reuse=True,
    )
