"""The process's long-lived collaborators, built once at start-up and passed down."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection

from sqlalchemy import Engine

from crystallise.common import tracing
from crystallise.common.secrets import SecretBox
from crystallise.config.registry import ConfigRegistry
from crystallise.config.settings import Settings
from crystallise.db.async_jobs import AsyncJobStore
from crystallise.db.engine import make_engine, make_session_factory, upgrade_database
from crystallise.db.jobs import JobStore
from crystallise.db.ranking_sessions import RankingSessionStore
from crystallise.db.service_configs import ServiceConfigStore
from crystallise.decisions.sessions import RankingSessions
from crystallise.jobs.engine.dispatch import InProcessDispatcher, JobDispatcher, QueueDispatcher
from crystallise.jobs.engine.process import ProcessDispatcher
from crystallise.jobs.engine.runner import JobRunner
from crystallise.llm.client import LLMClient


@dataclass
class Services:
    settings: Settings
    engine: Engine
    jobs: JobStore  # synchronous: scripts and tests
    store: AsyncJobStore  # the same store for async code: never blocks the event loop
    configs: ConfigRegistry
    llm: LLMClient
    runner: JobRunner
    dispatcher: JobDispatcher
    secret_box: SecretBox | None
    ranking_sessions: RankingSessions

    @classmethod
    def build(
        cls,
        settings: Settings,
        *,
        migrate: bool = True,
        child_main: Callable[[Settings, Connection], None] | None = None,
    ) -> Services:
        """Apply migrations, open the database, and wire the stores, LLM client and runner.
        Jobs go to the PostgreSQL queue when there is one; on the SQLite default to the
        server's child job process when ``child_main`` (its entry point) is given, else they
        run in this process."""
        tracing.configure()  # opt-in by the OTEL_* variables; a no-op otherwise
        url = settings.sqlalchemy_url
        if migrate:
            upgrade_database(url)
        engine = make_engine(url)
        sessions = make_session_factory(engine)
        jobs = JobStore(sessions, reuse_days=settings.reuse_retention_days)
        secret = settings.secret_key.get_secret_value()
        box = SecretBox(secret) if secret else None
        runner = JobRunner(
            AsyncJobStore(jobs.with_retries(settings.db_retry_s)),
            secret_box=box,
            heartbeat_s=settings.worker_heartbeat_s,
            budget_for=lambda tenant: (
                settings.tenants[tenant].budget_usd if tenant in settings.tenants else None
            ),
        )
        dispatcher: JobDispatcher = InProcessDispatcher(runner)
        if settings.uses_queue:
            dispatcher = QueueDispatcher(runner, settings.postgres_conninfo)
        elif settings.uses_job_process and child_main is not None:
            dispatcher = ProcessDispatcher(runner, settings, child_main)
        configs = ConfigRegistry(
            ServiceConfigStore(sessions),
            settings.default_model,
            settings.clustering_model,
            service_model=settings.service_model or None,
        )
        configs.refresh()  # held in memory from here on (before any request is served)
        return cls(
            settings=settings,
            engine=engine,
            jobs=jobs,
            store=AsyncJobStore(jobs),
            configs=configs,
            llm=LLMClient(settings),
            runner=runner,
            dispatcher=dispatcher,
            secret_box=box,
            ranking_sessions=RankingSessions(RankingSessionStore(sessions), settings),
        )

    async def aclose(self) -> None:
        await self.runner.shutdown()
        await self.dispatcher.stop()
        await self.llm.aclose()
        self.engine.dispose()
