"""Who is asking: the tenant a request acts for, set once by the API's auth dependency.

A deployment serves several teams (tenants), each with its own service keys
(``CRYSTALLISE_TENANTS``; keys in ``CRYSTALLISE_API_KEYS`` belong to the ``default`` tenant).
The auth dependency puts the caller in ``current_caller``; the job store reads it in every
query that finds jobs (``JobStore`` is the one place tenancy is enforced): a tenant sees only
its own jobs, and another tenant's job does not exist for it (404). Admin keys
(``CRYSTALLISE_ADMIN_API_KEYS``) and code outside a request (job runners, workers, the CLI)
have no scope: they see every job.
"""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime

DEFAULT_TENANT = "default"  # CRYSTALLISE_API_KEYS, dev mode, and rows older than tenancy
ADMIN_TENANT = "admin"  # owner of jobs an admin key creates


@dataclass(frozen=True)
class Caller:
    tenant: str
    admin: bool = False

    @property
    def scope(self) -> str | None:
        """The tenant whose jobs this caller may see; None: every tenant's."""
        return None if self.admin else self.tenant


current_caller: ContextVar[Caller | None] = ContextVar("crystallise_caller", default=None)


def job_scope() -> str | None:
    """The tenant filter for job queries now (None outside a request or for an admin)."""
    caller = current_caller.get()
    return caller.scope if caller else None


def job_owner() -> str:
    """The tenant a job created now belongs to."""
    caller = current_caller.get()
    return caller.tenant if caller else DEFAULT_TENANT


def month_start(now: datetime | None = None) -> datetime:
    """The start of the budget period: this calendar month, UTC."""
    now = now or datetime.now(UTC)
    return now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
