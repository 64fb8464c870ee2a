"""Read-only view of the job queue's worker registry (procrastinate's tables)."""

from __future__ import annotations

from sqlalchemy import Engine, text


def live_workers(engine: Engine, within_s: float) -> int | None:
    """Workers that sent a heartbeat in the last ``within_s`` seconds; None if unknown."""
    query = text(
        "SELECT count(*) FROM procrastinate_workers "
        "WHERE last_heartbeat > now() - make_interval(secs => :within)"
    )
    try:
        with engine.connect() as conn:
            return int(conn.execute(query, {"within": within_s}).scalar_one())
    except Exception:  # noqa: BLE001 - no queue schema yet, or not PostgreSQL
        return None
