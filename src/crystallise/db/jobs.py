"""The job store: job records and their per-item rows. All job SQL lives here."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, cast

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.orm import Session, sessionmaker

from crystallise.db.models import IndexerJob, JobItem, ScreeningJob

JobKind = Literal["screening", "indexer"]
JobRow = ScreeningJob | IndexerJob
TERMINAL_STATUSES = frozenset({"completed", "failed", "cancelled"})
ACTIVE_STATUSES = ("pending", "running")
# Any: both tables share their columns; mypy cannot join the two classes usefully.
_MODELS: dict[str, Any] = {
    "screening": ScreeningJob,
    "indexer": IndexerJob,
}
_INSERT_CHUNK = 1000


def utcnow() -> datetime:
    return datetime.now(UTC)


def as_utc(value: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes; everything we store is UTC."""
    if value is None:
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


@dataclass(frozen=True)
class ItemRow:
    seq: int
    item_id: str
    status: str
    input: dict[str, Any]
    result: dict[str, Any] | None


class JobStore:
    """Creates, updates and reads jobs and their items. Each method is one transaction."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions

    # ---- jobs -----------------------------------------------------------------
    def create_job(
        self,
        kind: JobKind,
        *,
        job_id: str,
        items: Sequence[tuple[str, dict[str, Any]]],
        project_id: int | None = None,
        model: str = "",
        mock: bool = False,
        config: dict[str, Any] | None = None,
        estimated_cost_usd: float | None = None,
        key_source: str = "server",
        idempotency_key: str | None = None,
        request_hash: str | None = None,
        encrypted_openai_key: str | None = None,
    ) -> JobRow:
        """Insert a pending job and one row per ``(item_id, input)`` in one transaction."""
        now = utcnow()
        row = _MODELS[kind](
            id=job_id,
            project_id=project_id,
            status="pending",
            progress=0.0,
            stage="",
            model=model,
            mock=mock,
            config=config or {},
            item_count=len(items),
            estimated_cost_usd=estimated_cost_usd,
            cancel_requested=False,
            key_source=key_source,
            idempotency_key=idempotency_key,
            request_hash=request_hash,
            encrypted_openai_key=encrypted_openai_key,
            created_at=now,
            updated_at=now,
        )
        with self._sessions.begin() as session:
            session.add(row)
            session.flush()
            for start in range(0, len(items), _INSERT_CHUNK):
                chunk = items[start : start + _INSERT_CHUNK]
                session.execute(
                    insert(JobItem),
                    [
                        {
                            "job_id": job_id,
                            "seq": start + i,
                            "item_id": item_id,
                            "status": "pending",
                            "input": payload,
                            "result": None,
                            "updated_at": now,
                        }
                        for i, (item_id, payload) in enumerate(chunk)
                    ],
                )
        return cast(JobRow, row)

    def get_job(self, kind: JobKind, job_id: str) -> JobRow | None:
        with self._sessions() as session:
            return cast(JobRow | None, session.get(_MODELS[kind], job_id))

    def find_by_idempotency_key(self, kind: JobKind, key: str) -> JobRow | None:
        model = _MODELS[kind]
        with self._sessions() as session:
            row = session.scalars(select(model).where(model.idempotency_key == key)).first()
            return cast(JobRow | None, row)

    def list_jobs(self, kind: JobKind, limit: int = 50) -> list[JobRow]:
        model = _MODELS[kind]
        with self._sessions() as session:
            stmt = select(model).order_by(model.created_at.desc()).limit(limit)
            return list(session.scalars(stmt))

    def active_job(self, kind: JobKind, project_id: int) -> JobRow | None:
        model = _MODELS[kind]
        with self._sessions() as session:
            stmt = (
                select(model)
                .where(model.project_id == project_id, model.status.in_(ACTIVE_STATUSES))
                .order_by(model.created_at.desc())
            )
            return cast(JobRow | None, session.scalars(stmt).first())

    def unfinished_jobs(self, kind: JobKind) -> list[JobRow]:
        model = _MODELS[kind]
        with self._sessions() as session:
            stmt = select(model).where(model.status.in_(ACTIVE_STATUSES))
            return list(session.scalars(stmt.order_by(model.created_at)))

    def update_job(self, kind: JobKind, job_id: str, **values: Any) -> None:
        """Set columns on a job that is not yet terminal (a finished job never changes)."""
        model = _MODELS[kind]
        values["updated_at"] = utcnow()
        with self._sessions.begin() as session:
            session.execute(
                update(model)
                .where(model.id == job_id, model.status.not_in(TERMINAL_STATUSES))
                .values(**values)
            )

    def request_cancel(self, kind: JobKind, job_id: str) -> JobRow | None:
        """Flag a job for cancellation; a pending job is cancelled at once."""
        model = _MODELS[kind]
        now = utcnow()
        with self._sessions.begin() as session:
            row = cast(JobRow | None, session.get(model, job_id))
            if row is None or row.status in TERMINAL_STATUSES:
                return row
            row.cancel_requested = True
            row.updated_at = now
            return row

    def is_cancel_requested(self, kind: JobKind, job_id: str) -> bool:
        model = _MODELS[kind]
        with self._sessions() as session:
            return bool(session.scalar(select(model.cancel_requested).where(model.id == job_id)))

    def purge_terminal_before(self, kind: JobKind, cutoff: datetime) -> int:
        """Delete terminal jobs (and their items) completed before ``cutoff``."""
        model = _MODELS[kind]
        with self._sessions.begin() as session:
            ids = list(
                session.scalars(
                    select(model.id).where(
                        model.status.in_(TERMINAL_STATUSES), model.completed_at < cutoff
                    )
                )
            )
            for start in range(0, len(ids), _INSERT_CHUNK):
                chunk = ids[start : start + _INSERT_CHUNK]
                session.execute(delete(JobItem).where(JobItem.job_id.in_(chunk)))
                session.execute(delete(model).where(model.id.in_(chunk)))
            return len(ids)

    def purge_expired(self, retention_days: int) -> int:
        if retention_days <= 0:
            return 0
        cutoff = utcnow() - timedelta(days=retention_days)
        return sum(self.purge_terminal_before(kind, cutoff) for kind in ("screening", "indexer"))

    # ---- items ----------------------------------------------------------------
    def items(
        self,
        job_id: str,
        *,
        statuses: Iterable[str] | None = None,
        after_seq: int = -1,
        limit: int = 500,
    ) -> list[ItemRow]:
        """Items in ``seq`` order, optionally only those in ``statuses``; keyset paging."""
        with self._sessions() as session:
            stmt = select(JobItem).where(JobItem.job_id == job_id, JobItem.seq > after_seq)
            if statuses is not None:
                stmt = stmt.where(JobItem.status.in_(list(statuses)))
            stmt = stmt.order_by(JobItem.seq).limit(limit)
            return [
                ItemRow(r.seq, r.item_id, r.status, r.input, r.result)
                for r in session.scalars(stmt)
            ]

    def iter_items(
        self, job_id: str, *, statuses: Iterable[str] | None = None, page: int = 500
    ) -> Iterable[ItemRow]:
        """Every matching item, streamed page by page (bounded memory)."""
        wanted = list(statuses) if statuses is not None else None
        after = -1
        while True:
            rows = self.items(job_id, statuses=wanted, after_seq=after, limit=page)
            yield from rows
            if len(rows) < page:
                return
            after = rows[-1].seq

    def result_page(self, job_id: str, offset: int, limit: int) -> list[ItemRow]:
        with self._sessions() as session:
            stmt = (
                select(JobItem)
                .where(JobItem.job_id == job_id)
                .order_by(JobItem.seq)
                .offset(offset)
                .limit(limit)
            )
            return [
                ItemRow(r.seq, r.item_id, r.status, r.input, r.result)
                for r in session.scalars(stmt)
            ]

    def save_item(self, job_id: str, seq: int, status: str, result: dict[str, Any] | None) -> None:
        """Store one item's result as soon as it is known (the checkpoint)."""
        self.save_items(job_id, [(seq, status, result)])

    def save_items(
        self, job_id: str, rows: Sequence[tuple[int, str, dict[str, Any] | None]]
    ) -> None:
        if not rows:
            return
        now = utcnow()
        with self._sessions.begin() as session:
            for seq, status, result in rows:
                session.execute(
                    update(JobItem)
                    .where(JobItem.job_id == job_id, JobItem.seq == seq)
                    .values(status=status, result=result, updated_at=now)
                )

    def count_items(self, job_id: str, statuses: Iterable[str] | None = None) -> int:
        with self._sessions() as session:
            stmt = select(func.count()).select_from(JobItem).where(JobItem.job_id == job_id)
            if statuses is not None:
                stmt = stmt.where(JobItem.status.in_(list(statuses)))
            return int(session.scalar(stmt) or 0)
