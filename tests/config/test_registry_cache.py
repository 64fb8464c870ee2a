"""Service config held in memory (issue 28): reads never touch the database; a change made
here is seen at once, one made by another process within the refresh interval."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pytest
from sqlalchemy.exc import OperationalError

from crystallise.config import registry as reg
from crystallise.db.engine import make_engine, make_session_factory, upgrade_database
from crystallise.db.service_configs import ServiceConfigStore


def _two_processes(tmp_path: Path) -> tuple[reg.ConfigRegistry, reg.ConfigRegistry]:
    url = f"sqlite:///{tmp_path / 'c.db'}"
    upgrade_database(url)
    made = []
    for _ in range(2):  # two registries over one database: two processes
        configs = reg.ConfigRegistry(ServiceConfigStore(make_session_factory(make_engine(url))))
        configs.refresh()
        made.append(configs)
    return made[0], made[1]


def test_a_change_is_seen_here_at_once_and_elsewhere_after_the_interval(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    here, there = _two_processes(tmp_path)
    here.update("screening", {"temperature": 0.7})
    assert here.get("screening").temperature == 0.7
    assert there.get("screening").temperature is None  # its copy is fresh: not reloaded yet
    monkeypatch.setattr(reg, "REFRESH_S", 0.0)
    assert there.get("screening").temperature == 0.7  # stale: reloaded in place (no loop)


def test_reads_on_the_event_loop_reload_in_a_thread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    here, there = _two_processes(tmp_path)
    here.update("criteria", {"system_prompt": "Be brief."})
    monkeypatch.setattr(reg, "REFRESH_S", 0.0)
    loads = there._store.all_overrides
    threads: list[threading.Thread] = []

    def recorded() -> dict[str, dict[str, object]]:
        threads.append(threading.current_thread())
        return loads()

    monkeypatch.setattr(there._store, "all_overrides", recorded)

    async def read_until_seen() -> tuple[threading.Thread, str | None]:
        for _ in range(200):  # the first read returns the copy it holds; a reload starts
            if there.system_override("criteria"):
                break
            await asyncio.sleep(0.01)
        return threading.current_thread(), there.system_override("criteria")

    loop_thread, seen = asyncio.run(read_until_seen())
    assert seen == "Be brief."
    assert threads and loop_thread not in threads  # every reload ran off the loop's thread


def test_a_failed_reload_keeps_the_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    here, _ = _two_processes(tmp_path)
    here.update("screening", {"temperature": 0.4})

    def down() -> dict[str, dict[str, object]]:
        raise OperationalError("SELECT", {}, Exception("database is down"))

    monkeypatch.setattr(here._store, "all_overrides", down)
    monkeypatch.setattr(reg, "REFRESH_S", 0.0)
    assert here.get("screening").temperature == 0.4
