"""Structured logging: JSON lines off a terminal, with secrets scrubbed from every event."""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog

# OpenAI keys (sk-..., sk-proj-...) and bearer tokens never reach a log line.
_SECRET_PATTERNS = [
    re.compile(r"sk-[A-Za-z0-9_\-]{8,}"),
    # a provider's masked echo of a key ("sk-****pXYZ", "sk-proj-****...abcd") still
    # carries part of it: none of it is passed on
    re.compile(r"sk-[A-Za-z0-9_\-]*[*.]{2,}[A-Za-z0-9_\-*.]*"),
    re.compile(r"(?i)(bearer\s+)[A-Za-z0-9_\-\.]+"),
]
_SECRET_KEYS = {
    "api_key",
    "openai_api_key",
    "x-api-key",
    "authorization",
    "x-openai-api-key",
}


def scrub(text: str) -> str:
    """Replace anything that looks like a key with a placeholder."""
    for pattern in _SECRET_PATTERNS:
        text = pattern.sub(lambda m: (m.group(1) if m.groups() else "") + "[REDACTED]", text)
    return text


def _scrub_processor(
    _: Any, __: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    for key, value in list(event_dict.items()):
        if key.lower() in _SECRET_KEYS:
            event_dict[key] = "[REDACTED]"
        elif isinstance(value, str):
            event_dict[key] = scrub(value)
    return event_dict


def configure_logging(level: str = "INFO", json_lines: bool | None = None) -> None:
    """Route stdlib and structlog through one renderer; JSON when stderr is not a TTY."""
    if json_lines is None:
        json_lines = not sys.stderr.isatty()
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _scrub_processor,
    ]
    renderer: Any = (
        structlog.processors.JSONRenderer() if json_lines else structlog.dev.ConsoleRenderer()
    )
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            _scrub_processor,
            renderer,
        ],
    )
    handler = logging.StreamHandler()
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(level.upper())
    for noisy in ("httpx", "httpx2", "httpcore", "openai"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def get_logger(name: str) -> Any:
    """A structlog logger bound to ``name``."""
    return structlog.get_logger(name)
