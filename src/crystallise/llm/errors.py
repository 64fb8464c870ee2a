"""Provider failures sorted into the error taxonomy of §4.3 (``crystallise.errors``):
which category an OpenAI SDK exception is, with the provider's message and code."""

from __future__ import annotations

import openai

from crystallise.errors import HTTP_STATUS, RETRYABLE, ErrorCategory, LLMError

__all__ = [
    "HTTP_STATUS",
    "RETRYABLE",
    "ErrorCategory",
    "LLMError",
    "classify_openai_error",
    "to_llm_error",
]


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
