"""The job store: job records and their per-item rows. All job SQL lives here."""

from __future__ import annotations

import copy
import functools
import inspect
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, TypeVar, cast, get_args, overload

from pydantic import BaseModel
from sqlalchemy import Text, delete, func, insert, select, update
from sqlalchemy import cast as sql_cast
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from crystallise.common.logging import get_logger
from crystallise.db.models import IndexerJob, JobItem, ScreeningJob
from crystallise.tenancy import job_owner, job_scope

JobKind = Literal["screening", "indexer"]
JOB_KINDS: tuple[JobKind, ...] = get_args(JobKind)  # the one list of job kinds
JobRow = ScreeningJob | IndexerJob
TERMINAL_STATUSES = frozenset({"completed", "failed", "cancelled"})
ACTIVE_STATUSES = ("pending", "running")
TERMINAL_ITEM_STATUSES = ("done", "error")
# Any: both tables share their columns; mypy cannot join the two classes usefully.
_MODELS: dict[str, Any] = {
    "screening": ScreeningJob,
    "indexer": IndexerJob,
}
M = TypeVar("M", bound=BaseModel)
_INSERT_CHUNK = 1000
_SPEND_KEYS = ("jobs", "spent_usd", "reserved_usd", "own_key_usd")


def _insert_items(
    session: Session,
    job_id: str,
    items: Sequence[tuple[str, dict[str, Any]]],
    reuse_keys: Sequence[str | None] | None,
    now: datetime,
) -> None:
    """One pending row per ``(item_id, input)``, inserted in chunks."""
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
                    "reuse_key": reuse_keys[start + i] if reuse_keys else None,
                    "updated_at": now,
                }
                for i, (item_id, payload) in enumerate(chunk)
            ],
        )


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

    def result_as(self, cls: type[M]) -> M | None:
        """The stored result as its kind's typed model (``ScreeningResult``,
        ``IndexedRecord``); None while the item has none."""
        return None if self.result is None else cls.model_validate(self.result)


log = get_logger(__name__)
F = TypeVar("F", bound=Callable[..., Any])
RETRY_FIRST_S = 0.05
RETRY_MAX_S = 2.0


def _connection_lost(exc: DBAPIError) -> bool:
    """A fault a later attempt can get past: lost/refused connection, server restarting,
    SQLite busy or out of space. Constraint violations and bad SQL are not retried."""
    return isinstance(exc, OperationalError) or exc.connection_invalidated


def _retrying(method: F) -> F:
    """Re-run the method (one whole transaction) across connection loss, for up to the
    store's ``retry_s``; then the error propagates and the job fails honestly."""

    @functools.wraps(method)
    def wrapper(self: JobStore, *args: Any, **kwargs: Any) -> Any:
        deadline = time.monotonic() + self.retry_s
        delay = RETRY_FIRST_S
        while True:
            try:
                return method(self, *args, **kwargs)
            except DBAPIError as exc:
                if not _connection_lost(exc) or time.monotonic() + delay > deadline:
                    raise
                log.warning(
                    "db_retry", method=method.__name__, error=type(exc.orig).__name__, delay_s=delay
                )
                time.sleep(delay)
                delay = min(delay * 2, RETRY_MAX_S)

    return cast(F, wrapper)


def _retry_public_methods(cls: type[JobStore]) -> type[JobStore]:
    for name, member in list(vars(cls).items()):
        if name.startswith("_") or not inspect.isfunction(member):
            continue
        if inspect.isgeneratorfunction(member) or name == "with_retries":
            continue
        setattr(cls, name, _retrying(member))
    return cls


@_retry_public_methods
class JobStore:
    """Creates, updates and reads jobs and their items. Each method is one transaction.

    ``with_retries(s)`` gives a store whose methods retry across a lost database connection
    (PostgreSQL restart, failover, SQLite busy) for ``s`` seconds: the job machinery uses it;
    API requests use the plain store and fail fast."""

    def __init__(
        self, sessions: sessionmaker[Session], retry_s: float = 0.0, reuse_days: int = 0
    ) -> None:
        self._sessions = sessions
        self.retry_s = retry_s
        # results older than this many days are not reused (0: as long as the job is kept)
        self.reuse_days = reuse_days

    def with_retries(self, seconds: float) -> JobStore:
        store = copy.copy(self)
        store.retry_s = seconds
        return store

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
        reuse_keys: Sequence[str | None] | None = None,
    ) -> JobRow:
        """Insert a pending job and one row per ``(item_id, input)`` in one transaction
        (``reuse_keys``: one per item, screening/reuse.py)."""
        now = utcnow()
        row = _MODELS[kind](
            id=job_id,
            tenant=job_owner(),
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
            _insert_items(session, job_id, items, reuse_keys, now)
        return cast(JobRow, row)

    # Tenancy is enforced here and only here: every query that finds jobs is scoped to the
    # caller's tenant (crystallise.tenancy.job_scope(); None for admins, runners, the CLI).
    # Item queries take a job id the caller could only have got through these.
    @staticmethod
    def _owned(model: Any, stmt: Any) -> Any:
        scope = job_scope()
        return stmt if scope is None else stmt.where(model.tenant == scope)

    @overload
    def get_job(self, kind: Literal["screening"], job_id: str) -> ScreeningJob | None: ...
    @overload
    def get_job(self, kind: Literal["indexer"], job_id: str) -> IndexerJob | None: ...
    @overload
    def get_job(self, kind: JobKind, job_id: str) -> JobRow | None: ...
    def get_job(self, kind: JobKind, job_id: str) -> JobRow | None:
        """The job, or None when it does not exist or belongs to another tenant."""
        model = _MODELS[kind]
        with self._sessions() as session:
            stmt = self._owned(model, select(model).where(model.id == job_id))
            return cast(JobRow | None, session.scalars(stmt).first())

    def find_by_idempotency_key(self, kind: JobKind, key: str) -> JobRow | None:
        model = _MODELS[kind]
        with self._sessions() as session:
            stmt = select(model).where(model.idempotency_key == key, model.tenant == job_owner())
            return cast(JobRow | None, session.scalars(stmt).first())

    def list_jobs(self, kind: JobKind, limit: int = 50) -> list[JobRow]:
        model = _MODELS[kind]
        with self._sessions() as session:
            stmt = self._owned(model, select(model)).order_by(model.created_at.desc()).limit(limit)
            return list(session.scalars(stmt))

    def active_job(self, kind: JobKind, project_id: int) -> JobRow | None:
        model = _MODELS[kind]
        with self._sessions() as session:
            stmt = self._owned(
                model,
                select(model).where(
                    model.project_id == project_id, model.status.in_(ACTIVE_STATUSES)
                ),
            ).order_by(model.created_at.desc())
            return cast(JobRow | None, session.scalars(stmt).first())

    def spend(self, since: datetime, tenant: str | None = None) -> dict[str, dict[str, float]]:
        """Per tenant, jobs created since ``since``: how many, the cost tallied on the
        server's key (``spent_usd``: usage so far), the cost still reserved for unfinished
        server-key jobs (``reserved_usd``: estimate minus tally) and the cost run on callers'
        own provider keys (``own_key_usd``). Mock jobs cost nothing."""
        out: dict[str, dict[str, float]] = {}
        for model in _MODELS.values():
            columns = (model.tenant, model.status, model.usage, model.estimated_cost_usd,
                       model.key_source)  # fmt: skip
            stmt = select(*columns).where(model.created_at >= since)
            if tenant is not None:
                stmt = stmt.where(model.tenant == tenant)
            with self._sessions() as session:
                rows = list(session.execute(stmt))
            for owner, status, usage, estimate, source in rows:
                row = out.setdefault(owner, dict.fromkeys(_SPEND_KEYS, 0.0))
                row["jobs"] += 1
                tallied = float((usage or {}).get("estimated_cost_usd") or 0.0)
                if source == "request":
                    row["own_key_usd"] += tallied
                elif source == "server":
                    row["spent_usd"] += tallied
                    if status not in TERMINAL_STATUSES:
                        row["reserved_usd"] += max(float(estimate or 0.0) - tallied, 0.0)
        return out

    def recent_usage_tallies(self, model: str, jobs: int = 20) -> list[dict[str, Any]]:
        """The usage tallies of this service's last ``jobs`` completed screening jobs on
        ``model`` (what ``llm.cost.reasoning_per_answer`` measures)."""
        with self._sessions() as session:
            stmt = (
                select(ScreeningJob.usage)
                .where(ScreeningJob.status == "completed", ScreeningJob.model == model)
                .order_by(ScreeningJob.created_at.desc())
                .limit(jobs)
            )
            usages = list(session.scalars(stmt))
        return [u["tally"] for u in usages if isinstance(u, dict) and u.get("tally")]

    def status_counts(self) -> dict[tuple[str, str], int]:
        """(kind, status) -> jobs, over unfinished jobs (the queue's depth, for /metrics)."""
        counts: dict[tuple[str, str], int] = {}
        for kind, model in _MODELS.items():
            stmt = (
                select(model.status, func.count())
                .where(model.status.in_(ACTIVE_STATUSES))
                .group_by(model.status)
            )
            with self._sessions() as session:
                counts.update({(kind, status): n for status, n in session.execute(stmt)})
        return counts

    # ---- reuse across jobs (screening/reuse.py) -------------------------------------------
    def _reusable(self, session: Session, keys: Sequence[str]) -> dict[str, tuple[str, Any]]:
        """key -> (job id, result) of a paper already reasoned under that key in a completed
        screening job (keys carry the tenant: no result crosses tenants)."""
        found: dict[str, tuple[str, Any]] = {}
        for start in range(0, len(keys), 500):
            stmt = (
                select(JobItem.reuse_key, JobItem.job_id, JobItem.result)
                .join(ScreeningJob, ScreeningJob.id == JobItem.job_id)
                .where(
                    JobItem.reuse_key.in_(keys[start : start + 500]),
                    JobItem.status.in_(("reasoned", "done")),
                    ScreeningJob.status.in_(TERMINAL_STATUSES),  # a paper's result is final
                )
            )
            if self.reuse_days > 0:
                stmt = stmt.where(JobItem.updated_at >= utcnow() - timedelta(self.reuse_days))
            for key, job_id, result in session.execute(stmt):
                found.setdefault(key, (job_id, result))
        return found

    def count_reusable(self, keys: Sequence[str]) -> int:
        """How many of ``keys`` a job could reuse (the estimate prices only the rest)."""
        with self._sessions() as session:
            found = self._reusable(session, list(set(keys)))
        return sum(1 for key in keys if key in found)

    def count_reusable_for(self, job_id: str) -> int:
        """How many of a stored job's pending papers would reuse a result when it runs."""
        with self._sessions() as session:
            keys = list(
                session.scalars(
                    select(JobItem.reuse_key).where(
                        JobItem.job_id == job_id,
                        JobItem.status == "pending",
                        JobItem.reuse_key.is_not(None),
                    )
                )
            )
            found = self._reusable(session, [str(k) for k in set(keys)])
        return sum(1 for key in keys if key in found)

    def reuse_results(self, job_id: str) -> int:
        """Give the job's pending papers the stored results of the same papers under the same
        setup (``reused_from``: the job they come from; cluster fields dropped, as themes are
        derived again for the whole set); they go on as reasoned. Returns how many."""
        with self._sessions.begin() as session:
            pending = list(
                session.execute(
                    select(JobItem.seq, JobItem.reuse_key).where(
                        JobItem.job_id == job_id,
                        JobItem.status == "pending",
                        JobItem.reuse_key.is_not(None),
                    )
                )
            )
            found = self._reusable(session, list({str(key) for _, key in pending}))
            now = utcnow()
            for seq, key in pending:
                if key not in found:
                    continue
                source_job, result = found[key]
                kept = {k: v for k, v in (result or {}).items()
                        if k not in ("cluster_id", "cluster_ids", "reused_from")}  # fmt: skip
                session.execute(
                    update(JobItem)
                    .where(JobItem.job_id == job_id, JobItem.seq == seq)
                    .values(
                        status="reasoned",
                        result={**kept, "reused_from": source_job},
                        updated_at=now,
                    )
                )
        return sum(1 for _, key in pending if key in found)

    def purge_reuse_index(self) -> int:
        """Forget the reuse keys of results older than ``reuse_days`` (the results stay with
        their jobs; they are no longer found for reuse). Returns how many."""
        if self.reuse_days <= 0:
            return 0
        cutoff = utcnow() - timedelta(self.reuse_days)
        with self._sessions.begin() as session:
            done = session.execute(
                update(JobItem)
                .where(JobItem.reuse_key.is_not(None), JobItem.updated_at < cutoff)
                .values(reuse_key=None)
            )
            return int(done.rowcount or 0)  # type: ignore[attr-defined]

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

    def complete_job(self, kind: JobKind, job_id: str, **values: Any) -> str:
        """Complete the job only if every item is terminal (checked in this transaction);
        otherwise fail it as retryable, naming how many items are unfinished."""
        model = _MODELS[kind]
        with self._sessions.begin() as session:
            open_items = session.scalar(
                select(func.count())
                .select_from(JobItem)
                .where(JobItem.job_id == job_id, JobItem.status.not_in(TERMINAL_ITEM_STATUSES))
            )
            if open_items:
                values = {
                    **values,
                    "status": "failed",
                    "error": f"{open_items} items did not reach a final state; retry the job "
                    "to finish them (POST .../retry).",
                    "error_category": "transient",
                    "error_retryable": True,
                }
            values["updated_at"] = utcnow()
            session.execute(
                update(model)
                .where(model.id == job_id, model.status.not_in(TERMINAL_STATUSES))
                .values(**values)
            )
            return str(values["status"])

    def reopen(
        self, kind: JobKind, job_id: str, *, key_source: str, encrypted_openai_key: str | None
    ) -> tuple[JobRow | None, int]:
        """Make a finished job ``pending`` again with its failed items back in the queue.

        Items that ended in ``error`` return to ``labelled`` when they kept their scores
        (screening), else to ``pending``; done items and the usage tally stay. Returns the
        row (None if unknown) and how many items will run; nothing changes when none would
        (or when the job is not finished)."""
        model = _MODELS[kind]
        with self._sessions.begin() as session:
            row = cast(JobRow | None, session.get(model, job_id, with_for_update=True))
            if row is None or row.status not in TERMINAL_STATUSES:
                return row, 0
            failed = list(
                session.scalars(
                    select(JobItem).where(JobItem.job_id == job_id, JobItem.status == "error")
                )
            )
            for item in failed:
                kept = {
                    k: v
                    for k, v in (item.result or {}).items()
                    if k not in ("error", "error_category")
                }
                item.status = "labelled" if "scores" in kept else "pending"
                item.result = kept if "scores" in kept else None
            unfinished = session.scalar(
                select(func.count())
                .select_from(JobItem)
                .where(JobItem.job_id == job_id, JobItem.status.in_(("pending", "labelled")))
            )
            if not unfinished and row.status == "completed":
                return row, 0
            row.status = "pending"
            row.error = row.error_category = row.error_retryable = None
            row.errors = None
            row.completed_at = None
            row.cancel_requested = False
            row.key_source = key_source
            row.encrypted_openai_key = encrypted_openai_key
            row.updated_at = utcnow()
            return row, int(unfinished or 0)

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
        return sum(self.purge_terminal_before(kind, cutoff) for kind in JOB_KINDS)

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

    def result_texts(self, job_id: str) -> list[str]:
        """Every stored result, in ``seq`` order, as the JSON text the database holds (the
        finished job's poll: decoded and encoded once by the caller, not row by row by the
        ORM, which costs ten times as much at 20,000 results)."""
        with self._sessions() as session:
            stmt = (
                select(sql_cast(JobItem.result, Text))
                .where(JobItem.job_id == job_id)
                .order_by(JobItem.seq)
            )
            return [t for t in session.scalars(stmt) if t is not None]

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
