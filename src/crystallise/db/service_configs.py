"""Persistence of runtime service-config overrides (§10.2)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from crystallise.db.jobs import utcnow
from crystallise.db.models import ServiceConfigRow


class ServiceConfigStore:
    """Reads and writes the override dict of each service id."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions

    def all_overrides(self) -> dict[str, dict[str, Any]]:
        with self._sessions() as session:
            return {r.service_id: dict(r.values) for r in session.scalars(select(ServiceConfigRow))}

    def merge_override(self, service_id: str, changes: dict[str, Any]) -> dict[str, Any]:
        """Merge ``changes`` into the stored override and return the result; a ``None``
        value removes that override (the field goes back to its default)."""
        with self._sessions.begin() as session:
            row = session.get(ServiceConfigRow, service_id, with_for_update=True)
            if row is None:
                row = ServiceConfigRow(service_id=service_id, values={}, updated_at=utcnow())
                session.add(row)
            merged = {**row.values, **changes}
            merged = {k: v for k, v in merged.items() if v is not None}
            row.values = merged
            row.updated_at = utcnow()
            return dict(merged)
