"""Small shared Pydantic types for request validation: every number fits the column it
goes to, strictly typed (``"5"`` is not 5) and finite; strings are bounded."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BeforeValidator, Field, StringConstraints

from crystallise.errors import BadInput

# A required string that is not empty or whitespace-only (a 400 names the field).
NonEmptyStr = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]

INT32_MAX = 2**31 - 1
# project_id is stored in an INTEGER column (32-bit on PostgreSQL)
ProjectId = Annotated[int, Field(ge=-(2**31), le=INT32_MAX, strict=True)]
Repetitions = Annotated[int, Field(ge=1, le=20, strict=True)]
ModelName = Annotated[str, Field(min_length=1, max_length=200)]

# The decision threshold, one definition: a paper is included at final_score >= threshold.
# Scores are 1-5, so a threshold outside 1-5 selects everything or nothing by accident.
THRESHOLD_MIN, THRESHOLD_MAX = 1.0, 5.0
JOB_THRESHOLD = 1.0  # a job's default (the contract's): excludes nothing
CLI_THRESHOLD = 3.0  # the CLI's default (criteria file, agreement table): "probably relevant"
Threshold = Annotated[float, Field(ge=THRESHOLD_MIN, le=THRESHOLD_MAX, allow_inf_nan=False)]


def _below_one_is_one(value: Any) -> Any:
    """A job's threshold from 0 up to 1 has always been accepted (it excludes nothing, as 1
    does): it is stored as 1."""
    numeric = isinstance(value, int | float) and not isinstance(value, bool)
    return THRESHOLD_MIN if numeric and 0 <= value < THRESHOLD_MIN else value


JobThreshold = Annotated[Threshold, BeforeValidator(_below_one_is_one)]


def check_threshold(value: float | None, name: str) -> None:
    """A threshold given outside a request model (a query parameter, a CLI option)."""
    if value is not None and not THRESHOLD_MIN <= value <= THRESHOLD_MAX:
        raise BadInput(f"{name} must be between 1 and 5 (scores are 1-5)")
