"""`crystallise prisma` and `crystallise screen --labels`: the audit of a screening run from
the command line (PRISMA counts and diagram; agreement with the reviewers' labels)."""

from __future__ import annotations

import asyncio
import csv
import json
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.table import Table

from crystallise.config.settings import Settings
from crystallise.decisions import schemas as ds
from crystallise.errors import BadInput
from crystallise.records.parse import parse_records
from crystallise.screening.prisma import prisma_svg


def read_labels(path: Path, ids_by_doi: dict[str, str]) -> dict[str, dict[str, int]]:
    """``reviewer -> {paper id: 0|1}`` from a CSV with columns id (or doi), reviewer, label."""
    if not path.is_file():
        raise BadInput(f"--labels: no file {path}")
    reviewers: dict[str, dict[str, int]] = {}
    with path.open(newline="", encoding="utf-8-sig") as handle:
        for line, row in enumerate(csv.DictReader(handle), 2):
            paper = (row.get("id") or "").strip() or ids_by_doi.get(
                (row.get("doi") or "").strip().lower(), ""
            )
            label = (row.get("label") or "").strip()
            reviewer = (row.get("reviewer") or "").strip() or "reviewer"
            if not paper or label not in ("0", "1"):
                raise BadInput(f"--labels line {line}: needs id (or a known doi) and label 0 or 1")
            reviewers.setdefault(reviewer, {})[paper] = int(label)
    if not reviewers:
        raise BadInput(f"--labels: {path} has no rows")
    return reviewers


def agreement_for(
    settings: Settings, job_id: str, body: ds.AgreementRequest, url: str | None, headers: Any
) -> dict[str, Any]:
    """The agreement endpoint's answer, from the server (--url) or the embedded store."""
    if url:
        response = httpx.post(
            f"{url.rstrip('/')}/v1/screening/jobs/{job_id}/agreement",
            json=body.model_dump(), headers=headers, timeout=120,
        )  # fmt: skip
        if response.status_code >= 400:
            raise BadInput(f"--labels: {response.json().get('detail')}")
        return dict(response.json())
    from crystallise.decisions.service import agreement_job
    from crystallise.services import Services

    async def run() -> dict[str, Any]:
        services = Services.build(settings)
        try:
            return (await agreement_job(services.store, job_id, body)).model_dump(mode="json")
        finally:
            await services.aclose()

    return asyncio.run(run())


def agreement_table(answer: dict[str, Any]) -> Table:
    table = Table(title="Agreement with the reviewers")
    for column in ("raters", "n", "agreement", "kappa (95% CI)", "AC1"):
        table.add_column(column)
    for pair in answer["pairs"]:
        ci = pair["kappa_ci"]
        kappa = "n/a" if pair["kappa"] is None else f"{pair['kappa']:.2f}"
        kappa += f" ({ci[0]:.2f} to {ci[1]:.2f})" if ci else ""
        agreement = (
            "n/a" if pair["percent_agreement"] is None else f"{pair['percent_agreement']:.1%}"
        )
        ac1 = "n/a" if pair["ac1"] is None else f"{pair['ac1']:.2f}"
        table.add_row(" vs ".join(pair["raters"]), str(pair["n"]), agreement, kappa, ac1)
    return table


def prisma_command(args: Any, settings: Settings) -> int:
    """Counts and the flow diagram of a local job (by id) or of a file Crystallise wrote."""
    source = Path(args.job)
    counts = (
        _file_counts(source, args.threshold) if source.is_file() else _job_counts(settings, args)
    )
    console = Console(stderr=True)
    console.print_json(json.dumps(counts))
    if args.out:
        out = Path(args.out)
        text = prisma_svg(counts) if out.suffix.lower() == ".svg" else json.dumps(counts, indent=2)
        out.write_text(text, encoding="utf-8")
        console.print(f"wrote {out}")
    return 0


def _job_counts(settings: Settings, args: Any) -> dict[str, Any]:
    from crystallise.db.engine import make_engine, make_session_factory
    from crystallise.db.jobs import JobStore
    from crystallise.screening.prisma import prisma_counts
    from crystallise.screening.spec import ScreeningJobSpec

    store = JobStore(make_session_factory(make_engine(settings.sqlalchemy_url)))
    row = store.get_job("screening", args.job)
    if row is None:
        raise BadInput(f"{args.job}: neither a file nor a screening job in {settings.data_dir}")
    spec = row.spec(ScreeningJobSpec)
    threshold = args.threshold if args.threshold is not None else spec.threshold
    return {"job_id": row.id, **prisma_counts(store.iter_items(row.id), threshold)}


def _file_counts(path: Path, threshold: float | None) -> dict[str, Any]:
    """From an export: RIS keywords (crystallise:include/exclude, crystallise-reason:...) or
    the CSV/XLSX columns decision and exclusion_reason."""
    records = parse_records(path.read_bytes(), filename=path.name).records
    counts: dict[str, Any] = {"threshold": threshold or _noted_threshold(records), "records_screened": len(records), "included": 0,
                              "excluded": 0, "failed": 0, "pending": 0, "duplicates_flagged": 0}  # fmt: skip
    reasons: dict[str, int] = {}
    for record in records:
        decision, reason = _decision(record)
        key = {"include": "included", "exclude": "excluded", "error": "failed"}.get(
            decision, "pending"
        )
        counts[key] += 1
        counts["duplicates_flagged"] += bool(
            record.duplicate_of or "crystallise:duplicate" in record.keywords
        )
        if decision == "exclude":
            reasons[reason or "unclear"] = reasons.get(reason or "unclear", 0) + 1
        threshold = (record.source or {}).get("threshold")
        counts["threshold"] = (
            float(threshold) if isinstance(threshold, int | float) else counts["threshold"]
        )
    counts["excluded_by_reason"] = [
        {"reason": r, "count": n} for r, n in sorted(reasons.items(), key=lambda kv: -kv[1])
    ]
    return counts


def _noted_threshold(records: list[Any]) -> float:
    """The threshold the RIS notes state ("... threshold 3, ..."); 0 when none does."""
    import re

    for record in records[:50]:
        for note in (record.source or {}).get("notes") or []:
            found = re.search(r"threshold (\d+(?:\.\d+)?)", str(note))
            if found:
                return float(found.group(1))
    return 0.0


def _decision(record: Any) -> tuple[str, str | None]:
    source = record.source or {}
    if source.get("decision"):
        return str(source["decision"]), str(source.get("exclusion_reason") or "") or None
    decision = next((k.split(":", 1)[1] for k in record.keywords if k.startswith("crystallise:")
                     and k != "crystallise:duplicate"), "pending")  # fmt: skip
    reason = next((k.split(":", 1)[1] for k in record.keywords
                   if k.startswith("crystallise-reason:")), None)  # fmt: skip
    return decision, reason
