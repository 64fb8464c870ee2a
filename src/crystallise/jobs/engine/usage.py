"""A job's ``usage`` column, typed: what a job function saves while it runs and when it ends
(the §4.4 token and cost counts, the spend tally a resumed job continues from, and each
kind's own counts), read back by the runner, a resumed job, the routes and the CLI."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict

if TYPE_CHECKING:
    from crystallise.db.jobs import JobRow


class JobUsage(BaseModel):
    """Fields a job stores in ``usage``; any other field a kind adds passes through."""

    model_config = ConfigDict(extra="allow")
    input_tokens: int | None = None
    output_tokens: int | None = None
    total_tokens: int | None = None
    estimated_cost_usd: float | None = None
    cached_input_tokens: int | None = None
    reasoning_tokens: int | None = None
    calls: int | None = None
    tally: dict[str, Any] | None = None  # UsageTally.to_dict(): what a resumed job has spent
    reused_count: int | None = None  # screening: papers whose earlier result was reused
    screened_count: int | None = None

    @classmethod
    def of(cls, row: JobRow | None) -> JobUsage:
        """The row's usage (empty for a job that has none yet)."""
        return cls.model_validate(row.usage or {}) if row is not None else cls()

    def stored(self) -> dict[str, Any]:
        """The stored form: the fields this usage was given, JSON-ready."""
        return self.model_dump(mode="json", exclude_unset=True)

    @property
    def spent_usd(self) -> float:
        return float(self.estimated_cost_usd or 0.0)

    def shown(self, *exclude: str) -> dict[str, Any]:
        """The usage as stored, less ``exclude`` (the poll hides the tally)."""
        return {k: v for k, v in self.stored().items() if k not in exclude}
