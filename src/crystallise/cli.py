"""Command line: ``crystallise serve``, ``crystallise db upgrade``."""

from __future__ import annotations

import argparse
import sys

from crystallise.config.settings import get_settings


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="crystallise", description="Crystallise AI backend")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="Run the HTTP API (migrations apply at start-up).")
    serve.add_argument("--host", default=None, help="Bind host (default CRYSTALLISE_API_HOST).")
    serve.add_argument(
        "--port", type=int, default=None, help="Port (default CRYSTALLISE_API_PORT)."
    )
    worker = sub.add_parser(
        "worker", help="Run queued jobs (needs CRYSTALLISE_DATABASE_URL on PostgreSQL)."
    )
    worker.add_argument(
        "--concurrency",
        type=int,
        default=None,
        help="Jobs at once (CRYSTALLISE_WORKER_CONCURRENCY).",
    )
    db = sub.add_parser("db", help="Database commands.")
    db_sub = db.add_subparsers(dest="db_command", required=True)
    db_sub.add_parser("upgrade", help="Apply all migrations to CRYSTALLISE_DATABASE_URL.")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    settings = get_settings()

    if args.command == "serve":
        import uvicorn

        from crystallise.api.app import create_app

        uvicorn.run(
            create_app(settings),
            host=args.host or settings.api_host,
            port=args.port or settings.api_port,
            log_config=None,
            access_log=False,
        )
        return 0
    if args.command == "db" and args.db_command == "upgrade":
        from crystallise.db.engine import upgrade_database

        upgrade_database(settings.sqlalchemy_url)
        if settings.is_postgres:
            import asyncio

            from crystallise.batch.queue import build_queue_app, ensure_queue_schema

            async def queue_schema() -> None:
                app = build_queue_app(settings.postgres_conninfo)
                async with app.open_async():
                    await ensure_queue_schema(app)

            asyncio.run(queue_schema())
        print("database upgraded to head")
        return 0
    if args.command == "worker":
        import asyncio

        from crystallise.worker import run_worker

        asyncio.run(run_worker(settings, args.concurrency))
        return 0
    parser.print_help()
    return 2


if __name__ == "__main__":
    sys.exit(main())
