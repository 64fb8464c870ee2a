"""The server's job process: on the embedded default (SQLite, no queue) `crystallise serve`
runs jobs in a child process, so that the event loop serving the API never shares a CPU
core or a GIL with hundreds of model calls a second.

The API process stores a job and sends ``("run", kind, job_id, request_key)`` down a pipe;
a per-request key travels only through that pipe and lives in the child's memory. Cancel
is the stored flag (seen within a second) plus a ``("cancel", ...)`` message. If the child
dies, the API process starts another, which resumes every unfinished job from its
checkpoint (a job whose per-request key died with it fails ``server_restart``).
"""

from __future__ import annotations

import asyncio
import multiprocessing
import threading
from collections.abc import Callable
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Any

from crystallise.common.logging import get_logger
from crystallise.config.settings import Settings
from crystallise.db.jobs import JobKind
from crystallise.jobs.engine.runner import JobRunner

log = get_logger(__name__)
STOP_GRACE_S = 10.0
READY_TIMEOUT_S = 120.0


class ProcessDispatcher:
    """Runs jobs in one child process of the server (the SQLite default). ``child_main`` is
    the child's entry point, ``child_main(settings, conn)``: it starts the services and hands
    them to ``serve_pipe`` (``jobs/start.py:job_process_main``)."""

    def __init__(
        self,
        runner: JobRunner,
        settings: Settings,
        child_main: Callable[[Settings, Connection], None],
    ) -> None:
        self.runner = runner
        self.child_main = child_main
        self.settings = settings.model_copy(update={"job_queue": "inprocess"})
        self._proc: BaseProcess | None = None
        self._conn: Connection | None = None
        # held while a job process starts: a job dispatched meanwhile waits, so that the
        # child's start-up resume never sees a request-key job whose key is still on its way
        self._starting = asyncio.Lock()

    async def start(self) -> None:
        async with self._starting:
            await self._spawn()

    async def _spawn(self) -> None:
        """Start the child and wait until it has resumed the unfinished jobs."""
        context = multiprocessing.get_context("spawn")
        parent, child = context.Pipe()
        proc = context.Process(
            target=self.child_main, args=(self.settings, child), name="crystallise-jobs"
        )
        proc.daemon = True  # never outlives the server
        proc.start()
        child.close()
        self._proc, self._conn = proc, parent
        if not await asyncio.to_thread(parent.poll, READY_TIMEOUT_S):
            raise RuntimeError("the job process did not start")
        parent.recv()  # ("ready",)
        log.info("job_process_started", pid=proc.pid)

    def _send(self, message: tuple[Any, ...]) -> None:
        if self._conn is None:
            raise RuntimeError("job process not started")
        self._conn.send(message)

    async def dispatch(self, kind: JobKind, job_id: str, request_key: str | None) -> None:
        async with self._starting:
            self._send(("run", kind, job_id, request_key))

    async def cancel(self, kind: JobKind, job_id: str) -> None:
        await self.runner.cancel(kind, job_id)
        async with self._starting:
            self._send(("cancel", kind, job_id, None))

    async def maintain(self, stalled_after_s: float) -> None:
        """Start a new job process if the last one died (it resumes unfinished jobs)."""
        async with self._starting:
            if self._proc is not None and not self._proc.is_alive():
                log.warning("job_process_died", exitcode=self._proc.exitcode)
                if self._conn is not None:
                    self._conn.close()
                await self._spawn()

    async def stop(self) -> None:
        proc, conn = self._proc, self._conn
        if proc is None or conn is None:
            return
        try:
            conn.send(("stop", "", "", None))
        except (BrokenPipeError, OSError):
            pass
        await asyncio.to_thread(proc.join, STOP_GRACE_S)
        if proc.is_alive():
            proc.terminate()
            await asyncio.to_thread(proc.join, STOP_GRACE_S)
        conn.close()
        self._proc = self._conn = None


async def serve_pipe(runner: JobRunner, conn: Connection) -> None:
    """The child's side: resume unfinished jobs, say ready, then run and cancel what the
    server sends until it says stop (or dies). Running jobs stay ``running`` and resume at
    the next start."""
    await runner.resume_unfinished()
    conn.send(("ready",))
    inbox: asyncio.Queue[tuple[Any, ...]] = asyncio.Queue()
    loop = asyncio.get_running_loop()
    threading.Thread(target=_read_pipe, args=(conn, loop, inbox), daemon=True).start()
    while True:
        op, kind, job_id, key = await inbox.get()
        if op == "stop":
            return
        if op == "run":
            runner.submit(kind, job_id, key)
        elif op == "cancel":
            runner.signal_cancel(job_id)


def _read_pipe(
    conn: Connection, loop: asyncio.AbstractEventLoop, inbox: asyncio.Queue[tuple[Any, ...]]
) -> None:
    """Forward messages to the event loop; a closed pipe (the server died) means stop."""
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            message = ("stop", "", "", None)
        loop.call_soon_threadsafe(inbox.put_nowait, message)
        if message[0] == "stop":
            return
