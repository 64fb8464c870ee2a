"""The cyclic garbage collector around bursts of short-lived objects."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def collector_paused() -> Iterator[None]:
    """Pause the cyclic collector while thousands of acyclic objects are built and dropped
    (decoding and encoding a finished job's results): its full passes would walk them again
    and again, more than doubling the time at 20,000 results. Reference counting still frees
    them; any cycle waits for the collector's return. Safe across threads: whoever found the
    collector on turns it back on, so it is never left off."""
    was_on = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_on:
            gc.enable()
