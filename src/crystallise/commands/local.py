"""Run a screening or indexing job from the command line, in this process on the embedded store.

The job is submitted through the library (``crystallise.jobs.submit``) with an Idempotency-Key
derived from the request itself, so running the same command again finds the same job: a
killed run resumes from its checkpoint, a finished one is only written out again.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from crystallise.config.settings import Settings
from crystallise.db.jobs import TERMINAL_STATUSES, JobKind, JobRow
from crystallise.errors import BadInput, Conflict
from crystallise.indexer.schemas import IndexerRequest
from crystallise.jobs.engine.usage import JobUsage
from crystallise.jobs.resume import retry_job
from crystallise.jobs.start import start_services
from crystallise.jobs.submit import (
    Submission,
    indexer_spec,
    request_fingerprint,
    screening_spec,
    submit_indexing,
    submit_screening,
)
from crystallise.records.export import ExportFormat, ExportSummary
from crystallise.records.service import export_job
from crystallise.screening.schemas import ScreeningRequest
from crystallise.services import Services

POLL_S = 0.25


@dataclass
class Snapshot:
    """What the progress display shows: items done of total, progress, stage, cost so far."""

    done: int
    total: int
    progress: float
    stage: str
    cost_usd: float
    status: str


Confirm = Callable[[float], bool]  # the estimated cost in USD → go ahead?
Show = Callable[[Snapshot], None]


def cli_idempotency_key(body: ScreeningRequest | IndexerRequest) -> str:
    """The same file, criteria and options give the same key, hence the same job."""
    return f"cli-{request_fingerprint(body)[:48]}"


def write_atomically(path: Path, chunks: Iterator[bytes]) -> int:
    """Write to a temporary file beside ``path``, then rename it: a killed run never leaves a
    half-written output. Returns the bytes written."""
    temporary = path.with_name(f".{path.name}.part")
    size = 0
    with temporary.open("wb") as out:
        for chunk in chunks:
            out.write(chunk)
            size += len(chunk)
    os.replace(temporary, path)
    return size


async def _snapshot(services: Services, kind: JobKind, job_id: str) -> tuple[JobRow, Snapshot]:
    row = await services.store.get_job(kind, job_id)
    assert row is not None
    done = await services.store.count_items(job_id, ["done", "failed"])
    cost = JobUsage.of(row).spent_usd
    snap = Snapshot(done, row.item_count, row.progress, row.stage, float(cost), row.status)
    return row, snap


async def follow(services: Services, kind: JobKind, job_id: str, show: Show) -> JobRow:
    """Report progress until the job ends; the final row."""
    while True:
        row, snap = await _snapshot(services, kind, job_id)
        show(snap)
        if row.status in TERMINAL_STATUSES:
            return row
        await asyncio.sleep(POLL_S)


def _estimate(services: Services, kind: JobKind, body: Any) -> float:
    spec_and_cost = (screening_spec if kind == "screening" else indexer_spec)(services, body)
    return float(spec_and_cost[1])


async def _start_or_resume(
    services: Services, kind: JobKind, body: Any, confirm: Confirm
) -> tuple[JobRow, str]:
    """The job for this request, running: new (after the cost check), resumed or retried."""
    key = cli_idempotency_key(body)
    row = await services.store.find_by_idempotency_key(kind, key)
    if row is None:
        if not body.mock and not confirm(_estimate(services, kind, body)):
            raise BadInput("not started: the estimated cost is above --confirm-above (add --yes)")
        submit = submit_screening if kind == "screening" else submit_indexing
        row = await submit(services, body, Submission(None, key, dispatch=False))
        services.runner.submit(kind, row.id)
        return row, "started"
    if row.status not in TERMINAL_STATUSES:
        services.runner.submit(kind, row.id)
        return row, "resumed"
    if row.status in ("failed", "cancelled"):
        try:
            return await retry_job(services, kind, row.id, None), "retried"
        except Conflict:
            return row, "finished"
    return row, "finished"


@dataclass
class RunResult:
    """How a CLI run ended: the job, how it was started, its counts, and the seconds taken."""

    job_id: str
    status: str
    how: str
    seconds: float
    cost_usd: float
    summary: ExportSummary
    error: str | None = None
    reused: int | None = None  # screening: papers whose earlier results were reused


async def run_local(
    settings: Settings,
    kind: JobKind,
    body: ScreeningRequest | IndexerRequest,
    out: tuple[Path, ExportFormat, float | None],
    confirm: Confirm,
    show: Show,
) -> RunResult:
    """Submit (or find) the job, run it here with progress, write the output file."""
    path, fmt, threshold = out
    services = await start_services(settings.model_copy(update={"job_queue": "inprocess"}))
    started = time.monotonic()
    try:
        row, how = await _start_or_resume(services, kind, body, confirm)
        row = await follow(services, kind, row.id, show)
        summary = ExportSummary()
        chunks = export_job(services.jobs, kind, row, fmt, threshold, summary).chunks
        await asyncio.to_thread(write_atomically, path, chunks)
        usage, seconds = JobUsage.of(row), time.monotonic() - started
        return RunResult(
            row.id, row.status, how, seconds, usage.spent_usd, summary, row.error,
            usage.reused_count,
        )  # fmt: skip
    finally:
        await services.aclose()
