"""A private PostgreSQL cluster on its own port, for outage tests and the soak benchmark
(never the shared server): initdb into a temporary folder, start, restart, stop."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.fake_openai import free_port

PG_BINS = sorted(Path("/usr/lib/postgresql").glob("*/bin"))


def available() -> bool:
    """Server binaries present (and runuser, to drop root: initdb refuses to run as root)."""
    return bool(PG_BINS) and (os.geteuid() != 0 or shutil.which("runuser") is not None)


def _pg(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    cmd = [str(PG_BINS[-1] / args[0]), *args[1:]]
    if os.geteuid() == 0:
        cmd = ["runuser", "-u", "postgres", "--", *cmd]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=check)


@dataclass
class Cluster:
    url: str
    data: str
    options: str
    log: str

    def restart(self) -> None:
        # -l: the postmaster must not inherit our pipes (pg_ctl would never return)
        _pg(
            "pg_ctl",
            "-D",
            self.data,
            "-o",
            self.options,
            "-l",
            self.log,
            "-m",
            "fast",
            "-w",
            "restart",
        )


@contextmanager
def private_cluster() -> Iterator[Cluster]:
    root = tempfile.mkdtemp(prefix="crystallise-pg-")
    os.chmod(root, 0o777)
    data = f"{root}/data"
    port = free_port()
    options = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c max_connections=200"
    _pg("initdb", "-D", data, "-A", "trust", "-U", "postgres")
    _pg("pg_ctl", "-D", data, "-o", options, "-l", f"{root}/log", "-w", "start")
    try:
        yield Cluster(
            f"postgresql://postgres@127.0.0.1:{port}/postgres", data, options, f"{root}/log"
        )
    finally:
        _pg("pg_ctl", "-D", data, "-m", "immediate", "stop", check=False)
        shutil.rmtree(root, ignore_errors=True)
