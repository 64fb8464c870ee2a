"""Checking quotes (indexer evidence, screening criterion quotes) against the record they claim
to quote."""

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


# A quote shorter than this (after normalising) is found in almost any abstract ("a",
# "12"): it cannot verify anything, so it counts as unverified. Three characters keep
# short numeric evidence such as "150" checkable.
MIN_QUOTE_CHARS = 3


def verify_quotes(quotes: list[str], title: str, abstract: str) -> tuple[bool | None, list[str]]:
    """``(all_found, not_found)``; ``None`` when there are no quotes to check. Quotes too
    short to mean anything (under MIN_QUOTE_CHARS) are listed as not found."""
    source = normalise(f"{title}\n{abstract}")
    cleaned = [q for q in (str(q).strip() for q in quotes) if q]
    if not cleaned:
        return None, []
    missing = [
        q for q in cleaned if len(normalise(q)) < MIN_QUOTE_CHARS or normalise(q) not in source
    ]
    return not missing, missing
