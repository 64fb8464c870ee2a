"""The failed-share rule both job kinds share: items fail alone, but when more than
FAILED_SHARE of the items decided so far have failed (counted once FAILED_MIN have), or all
of them, the provider or the job is at fault and the job fails."""

from __future__ import annotations

from crystallise.llm.errors import ErrorCategory, LLMError

FAILED_SHARE = 0.10
FAILED_MIN = 10


def too_many_failed(failed: int, decided: int) -> bool:
    return failed >= FAILED_MIN and failed > FAILED_SHARE * decided


def job_failure(failed: int, decided: int, noun: str, category: str, last: str) -> LLMError:
    """The job-wide error, in the category of the last item's error."""
    return LLMError(
        f"{failed} of {decided} {noun} failed (more than {FAILED_SHARE:.0%}): the provider or "
        f"the job is at fault, not single {noun}. Last error: {last}",
        ErrorCategory(category or "unknown"),
    )
