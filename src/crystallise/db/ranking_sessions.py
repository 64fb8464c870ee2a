"""Persistence of prioritised-screening sessions (decisions/sessions.py): the records once,
the labels append-only, scoped to the caller's tenant like jobs (crystallise.tenancy)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session, sessionmaker

from crystallise.db.jobs import as_utc, utcnow
from crystallise.db.models import RankingLabel, RankingSession
from crystallise.tenancy import job_owner, job_scope

EXPIRY_STEP = timedelta(hours=1)  # how stale the stored expiry may get before it moves


@dataclass(frozen=True)
class StoredSession:
    id: str
    tenant: str
    records: list[Any]  # [[id, title, abstract, score or None], ...] (older: [id, text, score])
    options: dict[str, Any]
    created_at: datetime
    expires_at: datetime


class RankingSessionStore:
    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions

    def create(
        self, session_id: str, records: list[Any], options: dict[str, Any], ttl: timedelta
    ) -> StoredSession:
        now = utcnow()
        row = RankingSession(
            id=session_id,
            tenant=job_owner(),
            records=records,
            options=options,
            created_at=now,
            expires_at=now + ttl,
        )
        with self._sessions.begin() as session:
            session.add(row)
        return StoredSession(session_id, row.tenant, records, options, now, now + ttl)

    def get(self, session_id: str) -> StoredSession | None:
        """The session, or None when it does not exist, has expired or belongs to another
        tenant."""
        with self._sessions() as session:
            stmt = select(RankingSession).where(
                RankingSession.id == session_id, RankingSession.expires_at > utcnow()
            )
            scope = job_scope()
            if scope is not None:
                stmt = stmt.where(RankingSession.tenant == scope)
            row = session.scalars(stmt).first()
            if row is None:
                return None
            created, expires = as_utc(row.created_at), as_utc(row.expires_at)
            assert created is not None and expires is not None
            return StoredSession(row.id, row.tenant, row.records, row.options, created, expires)

    def labels_after(self, session_id: str, seq: int) -> list[tuple[int, int, int]]:
        """(seq, record, label) of the labels given after ``seq``, in order."""
        with self._sessions() as session:
            stmt = (
                select(RankingLabel.seq, RankingLabel.record, RankingLabel.label)
                .where(RankingLabel.session_id == session_id, RankingLabel.seq > seq)
                .order_by(RankingLabel.seq)
            )
            return [(int(s), int(r), int(y)) for s, r, y in session.execute(stmt)]

    def add_labels(
        self, session_id: str, labels: list[tuple[int, int]], ttl: timedelta, after: int
    ) -> tuple[list[tuple[int, int, int]], datetime] | None:
        """Append ``(record, label)`` pairs and extend the session's life, in one
        transaction. Returns every label stored after seq ``after`` (those another process
        added too, then these), and the new expiry; None when the session is gone."""
        expires = utcnow() + ttl
        with self._sessions.begin() as session:
            # lock the session row (PostgreSQL) without loading its records
            found = session.scalar(
                select(RankingSession.id).where(RankingSession.id == session_id).with_for_update()
            )
            if found is None:
                return None
            last = session.scalar(
                select(func.max(RankingLabel.seq)).where(RankingLabel.session_id == session_id)
            )
            start = int(last or 0) + 1
            new = [(start + i, record, label) for i, (record, label) in enumerate(labels)]
            session.add_all(
                RankingLabel(session_id=session_id, seq=q, record=r, label=y) for q, r, y in new
            )
            # at most once an hour: SQLite rewrites the whole row (records and all) on update
            session.execute(
                update(RankingSession)
                .where(
                    RankingSession.id == session_id,
                    RankingSession.expires_at < expires - EXPIRY_STEP,
                )
                .values(expires_at=expires)
            )
            stmt = (
                select(RankingLabel.seq, RankingLabel.record, RankingLabel.label)
                .where(
                    RankingLabel.session_id == session_id,
                    RankingLabel.seq > after,
                    RankingLabel.seq < start,
                )
                .order_by(RankingLabel.seq)
            )
            earlier = [(int(q), int(r), int(y)) for q, r, y in session.execute(stmt)]
            stored = as_utc(
                session.scalar(
                    select(RankingSession.expires_at).where(RankingSession.id == session_id)
                )
            )
        return earlier + new, stored or expires

    def delete(self, session_id: str) -> bool:
        if self.get(session_id) is None:
            return False
        with self._sessions.begin() as session:
            session.execute(delete(RankingLabel).where(RankingLabel.session_id == session_id))
            session.execute(delete(RankingSession).where(RankingSession.id == session_id))
        return True

    def purge_expired(self) -> int:
        with self._sessions.begin() as session:
            ids = list(
                session.scalars(
                    select(RankingSession.id).where(RankingSession.expires_at <= utcnow())
                )
            )
            if ids:
                session.execute(delete(RankingLabel).where(RankingLabel.session_id.in_(ids)))
                session.execute(delete(RankingSession).where(RankingSession.id.in_(ids)))
        return len(ids)
