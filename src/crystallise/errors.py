"""Domain errors the library raises; the API renders each once (``api/errors.py``) as its
HTTP status with ``{"detail": message}``. Model failures are ``LLMError``, classified by the
taxonomy of §4.3 (``ErrorCategory``; ``llm/errors.py`` sorts provider exceptions into it)."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from crystallise.common.logging import scrub


class CrystalliseError(Exception):
    """A request the library refuses, with the HTTP status that describes why."""

    status_code = 400

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class BadInput(CrystalliseError):
    status_code = 400


class TooLarge(CrystalliseError):
    """Over a documented size or time limit (the message names it)."""

    status_code = 413


class ClientGone(CrystalliseError):
    """The client disconnected before the answer was ready (nginx's 499; nobody reads it)."""

    status_code = 499


class NotFound(CrystalliseError):
    status_code = 404


class Conflict(CrystalliseError):
    status_code = 409


class Unavailable(CrystalliseError):
    """A dependency (database, disk) cannot serve the request now; retry later."""

    status_code = 503


class ErrorCategory(StrEnum):
    TRANSIENT = "transient"
    RATE_LIMIT = "rate_limit"
    TIMEOUT = "timeout"
    AUTH = "auth"
    VALIDATION = "validation"
    UNKNOWN = "unknown"


RETRYABLE = frozenset({ErrorCategory.TRANSIENT, ErrorCategory.RATE_LIMIT, ErrorCategory.TIMEOUT})

HTTP_STATUS = {
    ErrorCategory.TRANSIENT: 500,
    ErrorCategory.RATE_LIMIT: 429,
    ErrorCategory.TIMEOUT: 500,
    ErrorCategory.AUTH: 401,
    ErrorCategory.VALIDATION: 400,
    ErrorCategory.UNKNOWN: 500,
}


class LLMError(Exception):
    """A classified failure talking to (or preparing a call for) a model."""

    def __init__(
        self,
        message: str,
        category: ErrorCategory = ErrorCategory.UNKNOWN,
        *,
        retry_after_s: float | None = None,
        item: bool = False,
        job_wide: bool = False,
        bad_answer: bool = False,
    ) -> None:
        super().__init__(scrub(message))
        self.message = scrub(message)
        self.category = category
        self.retry_after_s = retry_after_s
        # item: caused by (or confined to) this paper/record - others can go on; local
        # pre-flight refusals (unknown model, bad parameter) are job-wide unless marked;
        # job_wide: no call of this job can succeed (e.g. the account's quota is exhausted)
        self.item = item
        self.job_wide = job_wide
        # the model answered, but not in the shape asked for (after a repair re-ask): the
        # upstream's fault, retryable, answered 502 (not 500: nothing broke here)
        self.bad_answer = bad_answer

    @property
    def stops_job(self) -> bool:
        """True if no other item of the job can succeed either: fail the job, not the item.
        Bad keys, refused models and parameters, exhausted quota; item-caused validation
        errors and exhausted retries of transient faults stay with their item."""
        if self.job_wide or self.category is ErrorCategory.AUTH:
            return True
        return self.category is ErrorCategory.VALIDATION and not self.item

    @property
    def retryable(self) -> bool:
        return self.category in RETRYABLE

    @property
    def http_status(self) -> int:
        return 502 if self.bad_answer else HTTP_STATUS[self.category]

    def to_detail(self) -> dict[str, Any]:
        """The ``detail`` body of the reference's classified error response."""
        return {
            "message": self.message,
            "error_code": self.category.value,
            "retryable": self.retryable,
        }
