"""The error taxonomy of §4.3 and its HTTP translation."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

import openai

from crystallise.common.logging import scrub


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


def _category_for_status(status: int) -> ErrorCategory:
    if status == 429:
        return ErrorCategory.RATE_LIMIT
    if status in (401, 403):
        return ErrorCategory.AUTH
    if status in (400, 404, 422):
        return ErrorCategory.VALIDATION
    if status == 408:
        return ErrorCategory.TIMEOUT
    if status >= 500:
        return ErrorCategory.TRANSIENT
    return ErrorCategory.UNKNOWN


def classify_openai_error(exc: BaseException) -> ErrorCategory:
    """Map an exception to its category: by SDK exception class first, then by status."""
    if isinstance(exc, LLMError):
        return exc.category
    if isinstance(exc, openai.APITimeoutError):
        return ErrorCategory.TIMEOUT
    if isinstance(exc, openai.APIConnectionError | openai.InternalServerError):
        return ErrorCategory.TRANSIENT
    if isinstance(exc, openai.RateLimitError):
        return ErrorCategory.RATE_LIMIT
    if isinstance(exc, openai.AuthenticationError | openai.PermissionDeniedError):
        return ErrorCategory.AUTH
    if isinstance(exc, openai.BadRequestError | openai.NotFoundError):
        return ErrorCategory.VALIDATION
    if isinstance(exc, openai.LengthFinishReasonError | openai.ContentFilterFinishReasonError):
        return ErrorCategory.VALIDATION
    status = getattr(exc, "status_code", None)
    if isinstance(status, int):
        return _category_for_status(status)
    if isinstance(exc, TimeoutError):
        return ErrorCategory.TIMEOUT
    return ErrorCategory.UNKNOWN


def _provider_message(exc: BaseException) -> str:
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        message = body.get("message") or (body.get("error") or {}).get("message")
        if isinstance(message, str) and message:
            return message
    return str(exc) or type(exc).__name__


_MESSAGES = {
    ErrorCategory.AUTH: "Invalid OpenAI key",
    ErrorCategory.RATE_LIMIT: "Rate limit exceeded",
    ErrorCategory.TIMEOUT: "Model request timed out",
    ErrorCategory.TRANSIENT: "Model provider unavailable",
}


def to_llm_error(exc: BaseException) -> LLMError:
    """Wrap any exception as a classified ``LLMError`` with a safe message."""
    if isinstance(exc, LLMError):
        return exc
    category = classify_openai_error(exc)
    if category is ErrorCategory.VALIDATION:
        message = f"Model rejected the request: {_provider_message(exc)}"
    elif category is ErrorCategory.UNKNOWN:
        message = f"Unexpected model error ({type(exc).__name__})"
    else:
        message = f"{_MESSAGES[category]}: {_provider_message(exc)}"
    # A provider's 400/422 may be this request's content (too long, filtered) or a
    # parameter every call shares: it stays with its item, and a job whose items keep
    # failing is failed by the pipelines' failed-share rule. Codes no call can get past
    # (and 404: no such model) stop the job at once.
    code = _provider_code(exc)
    job_wide = code in _JOB_WIDE_CODES or isinstance(exc, openai.NotFoundError)
    return LLMError(message, category, item=not job_wide, job_wide=job_wide)


_JOB_WIDE_CODES = frozenset({"insufficient_quota", "model_not_found", "invalid_api_key"})


def _provider_code(exc: BaseException) -> str | None:
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        code = body.get("code") or (body.get("error") or {}).get("code")
        return code if isinstance(code, str) else None
    return None
