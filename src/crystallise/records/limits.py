"""Bounds on every import: a parse time budget, cancellation, and the size caps of a file.

A parse runs in a worker thread under a ``ParseBudget`` (``limited``); each reader calls
``checkpoint()`` once per record or row, which raises ``TooLarge`` (413) once the budget's
seconds are spent and ``ParseCancelled`` once the client that asked has gone. Code that parses
without a budget (the CLI) is bounded by the size caps alone.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from crystallise.errors import BadInput, TooLarge

MAX_CELL_CHARS = 10_000_000  # one CSV/TSV/XLSX cell
MAX_SHEET_ROWS = 1_048_576  # Excel's own limit: a declared row past it is not data
# All parts of a workbook together, decompressed, may be at most 16 MB + 20x the upload and
# 512 MB in all: real exports inflate 4-10x; a zip bomb inflates 1000x. This bounds the
# memory a parse can take (openpyxl streams the sheet, but holds shared strings and a cell).
XLSX_ALLOWANCE = 16 * 2**20
XLSX_MAX_RATIO = 20
XLSX_MAX_UNCOMPRESSED = 512 * 2**20
XLSX_MAX_ENTRIES = 10_000
MAX_NESTING = 100  # BibTeX braces; JSON depth is bounded by api/guard.py


class ParseCancelled(Exception):
    """The client went away: the parse stops and nothing is answered."""


class ParseBudget:
    """A deadline and a cancel flag for one parse."""

    def __init__(self, seconds: float, cancelled: threading.Event | None = None) -> None:
        self.seconds = seconds
        self.deadline = time.monotonic() + seconds
        self.cancelled = cancelled or threading.Event()

    def check(self) -> None:
        if self.cancelled.is_set():
            raise ParseCancelled()
        if time.monotonic() > self.deadline:
            raise TooLarge(
                f"file: parsing took longer than the parse time budget of {self.seconds:g} s "
                "(CRYSTALLISE_PARSE_TIME_BUDGET_S); split the file or send it in a simpler format"
            )


_budget: ContextVar[ParseBudget | None] = ContextVar("parse_budget", default=None)


@contextmanager
def limited(budget: ParseBudget | None) -> Iterator[None]:
    """Run the parse inside this block under ``budget`` (None: no time limit)."""
    token = _budget.set(budget)
    try:
        yield
    finally:
        _budget.reset(token)


def checkpoint() -> None:
    """Called once per record or row by every reader."""
    budget = _budget.get()
    if budget is not None:
        budget.check()


def check_cell(text: str, where: str) -> None:
    if len(text) > MAX_CELL_CHARS:
        raise TooLarge(
            f"{where}: a cell holds {len(text):,} characters, over the limit of "
            f"{MAX_CELL_CHARS:,} per cell"
        )


def check_nesting(text: str, opening: str = "{", closing: str = "}") -> None:
    """400 when brackets nest deeper than MAX_NESTING (a parser would recurse that deep)."""
    depth = 0
    for match in re.finditer(re.escape(opening) + "|" + re.escape(closing), text):
        if match.group() == opening:
            depth += 1
            if depth > MAX_NESTING:
                raise BadInput(
                    f"file: {opening}{closing} nested deeper than {MAX_NESTING} levels; "
                    "no bibliographic record needs that"
                )
        elif depth:
            depth -= 1
