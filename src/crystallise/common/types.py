"""Small shared Pydantic types for request validation: every number fits the column it
goes to, strictly typed (``"5"`` is not 5) and finite; strings are bounded."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, StringConstraints

# A required string that is not empty or whitespace-only (a 400 names the field).
NonEmptyStr = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]

INT32_MAX = 2**31 - 1
# project_id is stored in an INTEGER column (32-bit on PostgreSQL)
ProjectId = Annotated[int, Field(ge=-(2**31), le=INT32_MAX, strict=True)]
Repetitions = Annotated[int, Field(ge=1, le=20, strict=True)]
ModelName = Annotated[str, Field(min_length=1, max_length=200)]
