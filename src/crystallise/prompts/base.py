"""What a prompt is, and the table the prompt modules register theirs in (read it through
``prompts/registry.py``, which loads every prompt module first)."""

from __future__ import annotations

import hashlib
import re
import string
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
        """The user template filled with ``values`` verbatim. Untrusted text sits between
        delimiter tags (``<paper>``...``</paper>``); where a value itself contains such a tag,
        the delimiters become one the values do not contain (``<paper-1>``), so caller text
        reaches the model unchanged and still cannot close its own delimiter."""
        template = self.user or ""
        texts = [v for v in values.values() if isinstance(v, str)]
        for tag in set(_DELIMITER.findall(template)):
            if any(_tag_in(tag, text) for text in texts):
                fence = _unused_fence(tag, texts)
                template = template.replace(f"<{tag}>", f"<{fence}>")
                template = template.replace(f"</{tag}>", f"</{fence}>")
        return template.format(**values)


_DELIMITER = re.compile(r"</([a-z_]+)>")
DELIMITER_NOTE = (
    "If the enclosed text itself contains such a tag, the enclosing tags carry a numeric "
    "suffix (for example <paper-1> ... </paper-1>); only those enclose the data."
)


def _tag_in(tag: str, text: str) -> bool:
    return re.search(rf"<\s*/?\s*{tag}\b", text, re.IGNORECASE) is not None


def _unused_fence(tag: str, texts: list[str]) -> str:
    n = 1
    while any(_tag_in(f"{tag}-{n}", text) for text in texts):
        n += 1
    return f"{tag}-{n}"


REGISTERED: dict[str, Prompt] = {}


def register(prompt: Prompt) -> Prompt:
    if prompt.name in REGISTERED and REGISTERED[prompt.name] != prompt:
        raise ValueError(f"prompt {prompt.name!r} registered twice")
    REGISTERED[prompt.name] = prompt
    return prompt
