"""Checking evidence quotes against the record they claim to quote."""

from __future__ import annotations

import re
import unicodedata

_WS = re.compile(r"\s+")
_TRANSLATE = str.maketrans(
    {"‘": "'", "’": "'", "“": '"', "”": '"', "–": "-", "—": "-", "−": "-", "\u00a0": " "}
)


def normalise(text: str) -> str:
    """Case-, whitespace-, quote- and dash-insensitive form for substring matching."""
    text = unicodedata.normalize("NFKC", text).translate(_TRANSLATE).casefold()
    return _WS.sub(" ", text).strip()


def verify_quotes(quotes: list[str], title: str, abstract: str) -> tuple[bool | None, list[str]]:
    """``(all_found, not_found)``; ``None`` when there are no quotes to check."""
    source = normalise(f"{title}\n{abstract}")
    cleaned = [q for q in (str(q).strip() for q in quotes) if q]
    if not cleaned:
        return None, []
    missing = [q for q in cleaned if normalise(q) not in source]
    return not missing, missing
