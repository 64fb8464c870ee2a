"""The PostgreSQL job queue (procrastinate): API processes defer, `crystallise worker` runs.

One procrastinate job per Crystallise job, locked by the job id (never two runs of one job
at once). A worker that stops sending heartbeats has its jobs retried by any other worker's
watchdog, and the retried run resumes from the per-item checkpoint.
"""

from __future__ import annotations

import procrastinate
from procrastinate.exceptions import AlreadyEnqueued
from procrastinate.jobs import Status

from crystallise.common.logging import get_logger

QUEUE = "crystallise"
RUN_JOB = "crystallise.run_job"
log = get_logger(__name__)


def build_queue_app(conninfo: str) -> procrastinate.App:
    return procrastinate.App(connector=procrastinate.PsycopgConnector(conninfo=conninfo))


async def ensure_queue_schema(app: procrastinate.App) -> None:
    """Apply procrastinate's schema once (concurrent starters: the loser re-checks)."""
    row = await app.connector.execute_query_one_async(
        "SELECT to_regclass('procrastinate_jobs') IS NOT NULL AS present"
    )
    if row["present"]:
        return
    try:
        await app.schema_manager.apply_schema_async()
    except Exception:
        row = await app.connector.execute_query_one_async(
            "SELECT to_regclass('procrastinate_jobs') IS NOT NULL AS present"
        )
        if not row["present"]:
            raise


async def has_live_run(app: procrastinate.App, job_id: str) -> bool:
    """True if a run of this job is waiting or running (possibly on a stalled worker)."""
    for status in ("todo", "doing"):
        if list(await app.job_manager.list_jobs_async(lock=job_id, status=status)):
            return True
    return False


async def defer_job(app: procrastinate.App, kind: str, job_id: str) -> None:
    """Queue a run of the job; a run already waiting in the queue is enough."""
    deferrer = app.configure_task(RUN_JOB, queue=QUEUE, lock=job_id, queueing_lock=job_id)
    try:
        await deferrer.defer_async(kind=kind, job_id=job_id)
    except AlreadyEnqueued:
        pass


async def retry_stalled_jobs(app: procrastinate.App, stalled_after_s: float) -> int:
    """Put jobs of workers silent for ``stalled_after_s`` back in the queue."""
    retried = 0
    for job in await app.job_manager.get_stalled_jobs(seconds_since_heartbeat=stalled_after_s):
        try:
            await app.job_manager.retry_job(job)
            retried += 1
        except Exception:  # noqa: BLE001 - a waiting run of the same job exists
            # close the stalled run so that the waiting one (same lock) can start
            try:
                await app.job_manager.finish_job(job, status=Status.FAILED, delete_job=False)
                retried += 1
            except Exception:  # noqa: BLE001 - another watchdog got there first
                continue
    if retried:
        log.warning("stalled_jobs_retried", count=retried)
    return retried
