"""Size limits every request is held to, whichever service takes it."""

from __future__ import annotations

from crystallise.config.settings import Settings
from crystallise.errors import BadInput


def check_record_count(
    settings: Settings, field: str, count: int, noun: str = "records", hint: str = ""
) -> None:
    """400 when one request carries more records than CRYSTALLISE_MAX_PAPERS_PER_JOB."""
    cap = settings.max_papers_per_job
    if count > cap:
        raise BadInput(f"{field}: {count} {noun} exceed CRYSTALLISE_MAX_PAPERS_PER_JOB={cap}{hint}")
