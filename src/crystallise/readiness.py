"""Readiness of the service: what `GET /health/ready` reports."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url

from crystallise.config.model_capabilities import RetiredModelPolicy, shutdown_warnings
from crystallise.config.settings import Settings
from crystallise.db.engine import ping
from crystallise.db.queue_status import live_workers
from crystallise.services import Services

MIN_FREE_BYTES = 64 * 2**20  # below this the embedded database cannot be trusted to write


def readiness(services: Services) -> tuple[bool, dict[str, Any]]:
    """Healthy or not, and the body: ``status``, ``checks`` and any ``warnings``."""
    settings = services.settings
    database = ping(services.engine)
    disk = _disk(_sqlite_folder(settings)) if not settings.is_postgres else "ok"
    key = "configured" if settings.server_openai_key else "missing"
    if key == "missing" and not settings.is_openai_endpoint:
        key = "not_required"  # a local server: any key is sent
    warnings: list[str] = []
    past_shutdown = False
    if database == "ok":
        models = {c.service_id: c.model for c in services.configs.all()}
        policy: RetiredModelPolicy = (
            "reject" if settings.retired_model_policy == "reject" else "successor"
        )
        warnings, past_shutdown = shutdown_warnings(models, settings.today, policy)
    healthy = database == "ok" and disk == "ok" and key != "missing" and not past_shutdown
    body: dict[str, Any] = {
        "status": "ready" if healthy else "degraded",
        "checks": {
            "database": database,
            "disk": disk,
            "openai_key": key,
            "auth": "on" if settings.auth_enabled else "off (dev mode)",
        },
    }
    if settings.uses_queue and database == "ok":
        workers = live_workers(services.engine, settings.worker_stalled_after_s)
        body["checks"]["workers"] = workers if workers is not None else "unknown"
        if not workers:
            warnings.append("No live `crystallise worker`: queued jobs wait until one starts.")
    if warnings:
        body["warnings"] = warnings
    return healthy, body


def _sqlite_folder(settings: Settings) -> Path:
    """The folder of the SQLite file the service really uses (CRYSTALLISE_DATABASE_URL may
    put it outside CRYSTALLISE_DATA_DIR, which then need not exist)."""
    database = make_url(settings.sqlalchemy_url).database
    if database and database != ":memory:":
        return Path(database).expanduser().resolve().parent
    return settings.data_dir


def _disk(data_dir: Path) -> str:
    """``ok``, or ``low: N MB free`` under MIN_FREE_BYTES where the SQLite file lives."""
    try:
        free = shutil.disk_usage(data_dir).free
    except OSError as exc:
        return f"error: {type(exc).__name__}"
    return "ok" if free >= MIN_FREE_BYTES else f"low: {free // 2**20} MB free"
