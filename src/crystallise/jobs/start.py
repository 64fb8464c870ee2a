"""One start-up for every process that serves or runs jobs (the API, the queue worker, the
server's child job process, the CLI), the kinds registry (which function runs each job
kind), and waiting for a job to end.

Submitting work: ``crystallise.jobs.submit`` (``submit_screening``, ``submit_indexing``).
"""

from __future__ import annotations

import asyncio
import gc
import time
from multiprocessing.connection import Connection

from crystallise.common.logging import configure_logging
from crystallise.config.settings import Settings
from crystallise.db.jobs import TERMINAL_STATUSES, JobKind, JobRow
from crystallise.indexer.jobs import make_indexer_job
from crystallise.jobs.engine.process import serve_pipe
from crystallise.llm.tokens import warm_up
from crystallise.screening.jobs import make_screening_job
from crystallise.services import Services

WAIT_POLL_S = 0.2


async def start_services(settings: Settings, *, migrate: bool = True) -> Services:
    """What every process that serves or runs jobs starts with (the API, the queue worker,
    the job process): the stores, the LLM client and the runner with every job kind
    registered, built once; jobs sent to the server's child process on the SQLite default;
    the tokenizer warmed off the event loop."""
    services = Services.build(settings, migrate=migrate, child_main=job_process_main)
    register_job_handlers(services)
    await asyncio.to_thread(warm_up)
    # what start-up built lives as long as the process: kept out of the collector's full
    # passes, which otherwise walk these ~300,000 objects whenever a request makes many
    # (a finished 3,000-paper job's poll: 50 ms instead of 220 ms)
    gc.collect()
    gc.freeze()
    return services


def register_job_handlers(services: Services) -> None:
    """Register the job function of every job kind with the runner."""
    services.runner.register("screening", make_screening_job(services.settings, services.llm))
    services.runner.register("indexer", make_indexer_job(services.settings, services.llm))


def job_process_main(settings: Settings, conn: Connection) -> None:
    """Entry point of the server's child job process (``jobs/engine/process.py``)."""
    configure_logging(settings.log_level, settings.log_json)
    asyncio.run(_serve_jobs(settings, conn))


async def _serve_jobs(settings: Settings, conn: Connection) -> None:
    services = await start_services(settings, migrate=False)
    try:
        await serve_pipe(services.runner, conn)
    finally:
        await services.aclose()


async def wait_for_job(
    services: Services, kind: JobKind, job_id: str, timeout: float | None = None
) -> JobRow:
    """Poll the store until the job is terminal, wherever it runs (this process, the job
    process, a queue worker); ``TimeoutError`` after ``timeout`` seconds."""
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        row = await services.store.get_job(kind, job_id)
        if row is None:
            raise KeyError(job_id)
        if row.status in TERMINAL_STATUSES:
            return row
        if deadline is not None and time.monotonic() > deadline:
            raise TimeoutError(f"job {job_id} is still {row.status}")
        await asyncio.sleep(WAIT_POLL_S)
