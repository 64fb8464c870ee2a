"""ORM tables: the two job tables of §9.3, per-item results, and service configs."""

from __future__ import annotations

from datetime import datetime
from typing import Any, TypeVar

from pydantic import BaseModel
from sqlalchemy import JSON, Boolean, DateTime, Float, Index, Integer, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

M = TypeVar("M", bound=BaseModel)


class Base(DeclarativeBase):
    """Declarative base; Alembic reads ``Base.metadata``."""


class _JobColumns:
    """Columns every async job shares, whatever its kind."""

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    # the tenant that created the job (crystallise.tenancy); only it and admins see the job
    tenant: Mapped[str] = mapped_column(String(64), default="default", server_default="default")
    project_id: Mapped[int | None] = mapped_column(Integer, index=True)
    status: Mapped[str] = mapped_column(String(16), index=True, default="pending")
    progress: Mapped[float] = mapped_column(Float, default=0.0)
    stage: Mapped[str] = mapped_column(String(32), default="")
    model: Mapped[str] = mapped_column(String(128), default="")
    mock: Mapped[bool] = mapped_column(Boolean, default=False)
    config: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    item_count: Mapped[int] = mapped_column(Integer, default=0)
    model_version: Mapped[str | None] = mapped_column(String(128))
    estimated_cost_usd: Mapped[float | None] = mapped_column(Float)
    usage: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    errors: Mapped[list[str] | None] = mapped_column(JSON)
    error: Mapped[str | None] = mapped_column(Text)
    error_category: Mapped[str | None] = mapped_column(String(32))
    error_retryable: Mapped[bool | None] = mapped_column(Boolean)
    duration_ms: Mapped[int | None] = mapped_column(Integer)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    # "none" (mock), "server" (server key), "request" (per-request key, held in memory only)
    key_source: Mapped[str] = mapped_column(String(16), default="server")
    # A per-request key, Fernet-encrypted with CRYSTALLISE_SECRET_KEY, erased when the job ends.
    encrypted_openai_key: Mapped[str | None] = mapped_column(Text)
    # Batch API batches of a job run with "batch": true (ids, stage, state), kept so a
    # restarted job polls the batches it started instead of paying for them twice
    provider_batches: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON)
    idempotency_key: Mapped[str | None] = mapped_column(String(255))
    request_hash: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    completed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    def spec(self, cls: type[M]) -> M:
        """The typed spec stored with the job (``config``), parsed once per row. ``model`` is
        the row's model column, which version-0 indexer specs kept outside the config; the
        spec's own model wins where it has one."""
        parsed = getattr(self, "_parsed_spec", None)
        if parsed is None or parsed[0] is not self.config or not isinstance(parsed[1], cls):
            parsed = (self.config, cls.model_validate({"model": self.model, **(self.config or {})}))
            self._parsed_spec = parsed
        return parsed[1]


class ScreeningJob(_JobColumns, Base):
    __tablename__ = "screening_jobs"
    clusters: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON)
    stage_timings: Mapped[dict[str, int] | None] = mapped_column(JSON)
    __table_args__ = (
        Index("ix_screening_jobs_idem", "tenant", "idempotency_key", unique=True),
        Index("ix_screening_jobs_created", "created_at"),
        Index("ix_screening_jobs_tenant", "tenant", "created_at"),
    )


class IndexerJob(_JobColumns, Base):
    __tablename__ = "indexer_jobs"
    __table_args__ = (
        Index("ix_indexer_jobs_idem", "tenant", "idempotency_key", unique=True),
        Index("ix_indexer_jobs_created", "created_at"),
        Index("ix_indexer_jobs_tenant", "tenant", "created_at"),
    )


class JobItem(Base):
    """One paper/record of one job: its input and, once processed, its result."""

    __tablename__ = "job_items"
    job_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    item_id: Mapped[str] = mapped_column(String(512))
    # pipeline-defined phase, e.g. pending -> labelled -> reasoned -> done / error
    status: Mapped[str] = mapped_column(String(16), default="pending")
    input: Mapped[dict[str, Any]] = mapped_column(JSON)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # screening: hash of the paper's text and the screening setup (screening/reuse.py), so a
    # later job of the same tenant and setup can reuse the result instead of paying again
    reuse_key: Mapped[str | None] = mapped_column(String(64))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    __table_args__ = (
        Index("ix_job_items_status", "job_id", "status"),
        Index("ix_job_items_reuse", "reuse_key"),
    )


class ServiceConfigRow(Base):
    """A runtime override of one service's defaults (§10.2)."""

    __tablename__ = "service_configs"
    service_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    values: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class RankingSession(Base):
    """A prioritised-screening session (decisions/sessions.py): the records, kept so that the
    session survives a restart; the features are rebuilt from them when it is next used."""

    __tablename__ = "ranking_sessions"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    tenant: Mapped[str] = mapped_column(String(64), default="default")
    # [[id, title + abstract, llm score or null], ...] in the submitted order
    records: Mapped[list[Any]] = mapped_column(JSON)
    options: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)


class RankingLabel(Base):
    """One label given in a session, in the order given (append-only: a corrected label is a
    new row; the latest wins, the screening order keeps the first)."""

    __tablename__ = "ranking_labels"
    session_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    record: Mapped[int] = mapped_column(Integer)  # index into the session's records
    label: Mapped[int] = mapped_column(Integer)
