"""The prompt registry: every prompt the pipelines use, under a stable dotted name (§8)."""

from __future__ import annotations

import hashlib
import string
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Prompt:
    """A system prompt and/or a user template (``str.format`` fields are its variables)."""

    name: str
    service: str
    description: str
    system: str | None = None
    user: str | None = None

    @property
    def has_variables(self) -> bool:
        for text in (self.system, self.user):
            if text and any(f for _, f, _, _ in string.Formatter().parse(text) if f):
                return True
        return False

    @property
    def system_or_user(self) -> str:
        if self.system and self.user:
            return "both"
        return "system" if self.system else "user"

    @property
    def version(self) -> str:
        """A short hash of the prompt text, stored with results (prompts are versioned)."""
        text = f"{self.system or ''}\x00{self.user or ''}"
        return hashlib.sha256(text.encode()).hexdigest()[:12]

    def render_user(self, **values: str) -> str:
        return (self.user or "").format(**values)


_REGISTRY: dict[str, Prompt] = {}
_LOADERS: list[Callable[[], None]] = []


def register(prompt: Prompt) -> Prompt:
    if prompt.name in _REGISTRY and _REGISTRY[prompt.name] != prompt:
        raise ValueError(f"prompt {prompt.name!r} registered twice")
    _REGISTRY[prompt.name] = prompt
    return prompt


def _load_all() -> None:
    # Importing the prompt modules registers their prompts.
    from crystallise.prompts import criteria, indexer, screening  # noqa: F401


def get_prompt(name: str) -> Prompt | None:
    _load_all()
    return _REGISTRY.get(name)


def require_prompt(name: str) -> Prompt:
    prompt = get_prompt(name)
    if prompt is None:
        raise KeyError(f"unknown prompt {name!r}")
    return prompt


def list_prompts() -> list[Prompt]:
    _load_all()
    return sorted(_REGISTRY.values(), key=lambda p: p.name)
