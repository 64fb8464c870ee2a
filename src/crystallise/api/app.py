"""The FastAPI application: a thin HTTP front over the ``crystallise`` library."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import APIRouter, Depends, FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles

from crystallise.api.deps import require_api_key
from crystallise.api.errors import install_error_handlers
from crystallise.api.guard import bound_sync_calls, guard_json_body
from crystallise.api.middleware import BodySizeLimitMiddleware, RequestContextMiddleware
from crystallise.api.operation_ids import operation_id
from crystallise.api.routers import config, health, metrics
from crystallise.common.logging import configure_logging, get_logger
from crystallise.config.settings import Settings, get_settings
from crystallise.jobs.start import start_services
from crystallise.services import Services

log = get_logger(__name__)
RETENTION_INTERVAL_S = 3600.0


def _protected_routers() -> list[APIRouter]:
    from crystallise.api.routers import criteria, decisions, indexer, records, screening, usage

    routers = [config.router, criteria.router, screening.router, decisions.router]
    return [*routers, indexer.router, records.router, usage.router]


async def _maintenance_loop(services: Services) -> None:
    """Hourly: purge terminal jobs past retention and expired prioritisation sessions. Every
    heartbeat: fail orphaned jobs."""
    settings = services.settings
    next_purge = 0.0
    while True:
        now = asyncio.get_running_loop().time()
        try:
            if now >= next_purge:
                next_purge = now + RETENTION_INTERVAL_S
                purged = await services.store.purge_expired(settings.job_retention_days)
                if purged:
                    log.info("jobs_purged", count=purged)
                forgotten = await services.store.purge_reuse_index()
                if forgotten:
                    log.info("reuse_keys_purged", count=forgotten)
                sessions = await services.ranking_sessions.purge_expired()
                if sessions:
                    log.info("ranking_sessions_purged", count=sessions)
            await services.dispatcher.maintain(settings.worker_stalled_after_s)
        except Exception:
            log.exception("maintenance_failed")
        await asyncio.sleep(settings.worker_heartbeat_s)


DOCS_ASSETS = "/docs-assets"


def _docs(app: FastAPI, protected: bool) -> None:
    """/openapi.json, /docs and /redoc with Swagger UI and ReDoc served from the
    ``fastapi_offline`` package (no CDN: the pages work on an offline intranet); behind the
    service key when CRYSTALLISE_DOCS_REQUIRE_KEY is set."""
    import fastapi_offline

    auth = [Depends(require_api_key)] if protected else []
    assets = Path(fastapi_offline.__file__).parent / "static"
    app.mount(DOCS_ASSETS, StaticFiles(directory=assets), name="docs-assets")

    @app.get("/openapi.json", include_in_schema=False, dependencies=auth)
    def openapi() -> JSONResponse:
        return JSONResponse(app.openapi())

    @app.get("/docs", include_in_schema=False, dependencies=auth)
    def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url="/openapi.json",
            title=app.title,
            swagger_js_url=f"{DOCS_ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{DOCS_ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{DOCS_ASSETS}/favicon.png",
        )

    @app.get("/redoc", include_in_schema=False, dependencies=auth)
    def redoc() -> HTMLResponse:
        return get_redoc_html(
            openapi_url="/openapi.json",
            title=app.title,
            redoc_js_url=f"{DOCS_ASSETS}/redoc.standalone.js",
            redoc_favicon_url=f"{DOCS_ASSETS}/favicon.png",
            with_google_fonts=False,
        )


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the app; the database, LLM client and job runner live for its lifespan."""
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        configure_logging(settings.log_level, settings.log_json)
        if not settings.auth_enabled:
            log.warning(
                "DEV MODE: no service key (CRYSTALLISE_API_KEYS / CRYSTALLISE_TENANTS), every "
                "route is open without a key; `serve` listens on 127.0.0.1 only unless "
                "CRYSTALLISE_API_HOST or --host says otherwise"
            )
        services = await start_services(settings)
        app.state.services = services
        await services.dispatcher.start()
        retention = asyncio.create_task(_maintenance_loop(services))
        try:
            yield
        finally:
            retention.cancel()
            await services.aclose()

    app = FastAPI(
        title="Crystallise AI Backend",
        version="0.1.0",
        description="AI screening, indexing and criteria help for systematic reviews.",
        lifespan=lifespan,
        generate_unique_id_function=operation_id,
        openapi_url=None,  # served by _docs, with local assets
        docs_url=None,
        redoc_url=None,
    )
    install_error_handlers(app)
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=settings.max_request_bytes)
    app.add_middleware(RequestContextMiddleware)

    # Every route answers at /v1/... and at the unprefixed path.
    app.include_router(health.router)
    app.include_router(metrics.router)
    auth = [Depends(require_api_key), Depends(guard_json_body), Depends(bound_sync_calls)]
    _docs(app, protected=settings.docs_require_key)
    for router in _protected_routers():
        app.include_router(router, prefix="/v1", dependencies=auth)
        app.include_router(router, dependencies=auth, include_in_schema=False)
    return app
