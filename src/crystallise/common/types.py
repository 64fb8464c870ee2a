"""Small shared Pydantic types for request validation."""

from __future__ import annotations

from typing import Annotated

from pydantic import StringConstraints

# A required string that is not empty or whitespace-only (a 400 names the field).
NonEmptyStr = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]
