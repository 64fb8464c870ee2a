"""`crystallise worker`: runs queued jobs (PostgreSQL), with a watchdog for stalled workers."""

from __future__ import annotations

import asyncio

import procrastinate

from crystallise.common.logging import configure_logging, get_logger
from crystallise.config.settings import Settings
from crystallise.db.jobs import JOB_KINDS
from crystallise.jobs.engine.queue import (
    QUEUE,
    RUN_JOB,
    build_queue_app,
    defer_job,
    ensure_queue_schema,
    has_live_run,
    retry_stalled_jobs,
)
from crystallise.jobs.start import start_services
from crystallise.services import Services

log = get_logger(__name__)


async def _watchdog(services: Services, app: procrastinate.App) -> None:
    settings = services.settings
    next_purge = 0.0
    while True:
        await asyncio.sleep(settings.worker_heartbeat_s)
        try:
            await retry_stalled_jobs(app, settings.worker_stalled_after_s)
            await services.runner.fail_orphaned(settings.worker_stalled_after_s)
            now = asyncio.get_running_loop().time()
            if settings.job_retention_days > 0 and now >= next_purge:
                next_purge = now + 3600
                # the queue's own finished rows follow the same retention as our job rows
                await app.job_manager.delete_old_jobs(
                    nb_hours=settings.job_retention_days * 24, include_failed=True
                )
        except Exception:
            log.exception("watchdog_failed")


async def _requeue_unfinished(services: Services, app: procrastinate.App) -> None:
    """Jobs created but never queued (an API process died in between) get queued now."""
    for kind in JOB_KINDS:
        for row in await services.store.unfinished_jobs(kind):
            if row.key_source == "request" and not row.encrypted_openai_key:
                continue  # runs (or ran) on the API process that holds its key
            if not await has_live_run(app, row.id):
                await defer_job(app, kind, row.id)


async def run_worker(settings: Settings, concurrency: int | None = None) -> None:
    """Run jobs from the queue until SIGINT/SIGTERM."""
    if not settings.is_postgres:
        raise SystemExit("crystallise worker needs CRYSTALLISE_DATABASE_URL on PostgreSQL")
    configure_logging(settings.log_level, settings.log_json)
    services = await start_services(settings)
    app = build_queue_app(settings.postgres_conninfo)

    @app.task(name=RUN_JOB, queue=QUEUE)
    async def run_job(kind: str, job_id: str) -> None:
        await services.runner.execute(kind, job_id)  # type: ignore[arg-type]

    async with app.open_async():
        await ensure_queue_schema(app)
        await _requeue_unfinished(services, app)
        watchdog = asyncio.create_task(_watchdog(services, app))
        log.info("worker_started", concurrency=concurrency or settings.worker_concurrency)
        try:
            await app.run_worker_async(
                queues=[QUEUE],
                concurrency=concurrency or settings.worker_concurrency,
                update_heartbeat_interval=settings.worker_heartbeat_s,
                # a retried job sends no NOTIFY: poll at the heartbeat's pace
                fetch_job_polling_interval=min(5.0, settings.worker_heartbeat_s),
                stalled_worker_timeout=settings.worker_stalled_after_s,
                install_signal_handlers=True,
            )
        finally:
            watchdog.cancel()
            await services.aclose()
