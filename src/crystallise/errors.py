"""Domain errors the library raises; the API renders each once (``api/errors.py``) as its
HTTP status with ``{"detail": message}``. Model failures are ``llm.errors.LLMError``."""

from __future__ import annotations


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
