"""Command line: ``crystallise serve``, ``worker``, ``db upgrade``, and the researcher's
commands ``screen``, ``index`` and ``criteria check`` (``crystallise.commands``)."""

from __future__ import annotations

import argparse
import os
import re
import sys
from typing import Any

from pydantic import ValidationError
from pydantic_settings import SettingsError

from crystallise.config.settings import Settings, get_settings
from crystallise.records.schemas import FORMATS


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
        "--metrics-port",
        type=int,
        default=None,
        help="Serve this worker's Prometheus metrics on this port (a worker on another host "
        "than `serve`; on the same host, share PROMETHEUS_MULTIPROC_DIR instead).",
    )
    worker.add_argument(
        "--concurrency",
        type=int,
        default=None,
        help="Jobs at once (CRYSTALLISE_WORKER_CONCURRENCY).",
    )
    _add_job_commands(sub)
    criteria = sub.add_parser("criteria", help="Criteria help.")
    criteria_sub = criteria.add_subparsers(dest="criteria_command", required=True)
    check = criteria_sub.add_parser(
        "check", help="Is a research question ready for criteria (PICOS)? Exit 0 if ready."
    )
    check.add_argument("question", help="The research question, quoted.")
    _add_common(check)
    prisma = sub.add_parser(
        "prisma", help="PRISMA 2020 screening counts and flow diagram of a job or an export."
    )
    prisma.add_argument("job", help="A screening job id (embedded store) or a file we exported.")
    prisma.add_argument("--out", default=None, help="Write the diagram (.svg) or counts (.json).")
    prisma.add_argument("--threshold", type=float, default=None, help="Include at >= this.")
    db = sub.add_parser("db", help="Database commands.")
    db_sub = db.add_subparsers(dest="db_command", required=True)
    db_sub.add_parser("upgrade", help="Apply all migrations to CRYSTALLISE_DATABASE_URL.")
    return parser


def _add_common(command: argparse.ArgumentParser) -> None:
    command.add_argument("--mock", action="store_true", help="Dry run: no model call, no key.")
    command.add_argument("--model", default=None, help="Model (default: the service's).")
    command.add_argument(
        "--url", default=None, help="Run on a Crystallise server at this URL instead of here."
    )
    command.add_argument(
        "--api-key",
        default=os.environ.get("CRYSTALLISE_API_KEY"),
        help="The server's service key with --url (default: $CRYSTALLISE_API_KEY).",
    )


def _add_job_commands(sub: Any) -> None:
    for name, noun, extra, helptext in (
        ("screen", "screened", "--criteria", "Criteria file (YAML or JSON; see README)."),
        ("index", "indexed", "--fields", "Fields file (YAML or JSON; see README)."),
    ):
        command = sub.add_parser(
            name,
            help=f"{name.capitalize()} a references file (RIS, nbib, PubMed XML, BibTeX, EndNote "
            "XML, CSV, TSV, XLSX); run it again to resume.",
        )
        command.add_argument("file", help="The references file.")
        command.add_argument(extra, required=True, help=helptext)
        command.add_argument(
            "--out",
            default=None,
            help=f"Output .ris/.csv/.jsonl/.xlsx (default: FILE.{noun}.ris|csv).",
        )
        command.add_argument("--format", default=None, choices=FORMATS, help="Input format.")
        command.add_argument("--encoding", default=None, help="Input encoding (default: detect).")
        command.add_argument("--yes", action="store_true", help="Do not ask before spending.")
        command.add_argument(
            "--confirm-above",
            type=float,
            default=1.0,
            help="Ask before a run estimated above this many USD (default 1.00).",
        )
        if name == "screen":
            command.add_argument("--repetitions", type=int, default=None, help="1-10 (default 5).")
            command.add_argument(
                "--threshold", type=float, default=None, help="Include at final_score >= this."
            )
            command.add_argument(
                "--update-of",
                default=None,
                help="The earlier output of this review (.ris/.csv): report the records found "
                "again; every paper screened before is reused by content either way.",
            )
            command.add_argument(
                "--labels",
                default=None,
                help="Reviewers' labels (CSV: id or doi, reviewer, label 0/1): print the "
                "agreement after the job and write it beside the output.",
            )
        _add_common(command)


def _researcher_command(args: argparse.Namespace, settings: Any) -> int:
    """screen / index / criteria check: a clear message and exit 2 on bad input."""
    import logging

    from rich.console import Console

    from crystallise.common.logging import configure_logging
    from crystallise.errors import CrystalliseError
    from crystallise.llm.errors import LLMError

    configure_logging("WARNING", settings.log_json)  # the console shows progress, not logs
    logging.getLogger("bibtexparser").setLevel(logging.ERROR)  # reported as our own warnings
    try:
        if args.command == "criteria":
            from crystallise.commands.criteria import check_question

            return check_question(args, settings)
        if args.command == "prisma":
            from crystallise.commands.audit import prisma_command

            return prisma_command(args, settings)
        from crystallise.commands.screen import run_command

        return run_command(args, settings, "screening" if args.command == "screen" else "indexer")
    except (CrystalliseError, LLMError) as exc:
        Console(stderr=True).print(f"[red]error:[/] {exc.message}")
        return 2
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        Console(stderr=True).print(f"[red]error:[/] {problems}")
        return 2
    except KeyboardInterrupt:
        Console(stderr=True).print("stopped; run the same command again to resume.")
        return 130


def _settings_problem(exc: Exception) -> str:
    """A bad CRYSTALLISE_* value, named and explained in one line (no traceback)."""
    cause = exc if isinstance(exc, ValidationError) else exc.__cause__
    if not isinstance(cause, ValidationError):
        field = re.search(r'field "(\w+)"', str(exc))
        name = f"CRYSTALLISE_{field.group(1).upper()}" if field else "a setting"
        return f"{name}: not valid JSON ({cause or exc})"
    return "; ".join(
        f"CRYSTALLISE_{str(e['loc'][0]).upper()}"
        + "".join(f".{p}" for p in e["loc"][1:])
        + f": {e['msg']}"
        for e in cause.errors()
    )


def _share_metrics(settings: Settings) -> None:
    """One multiprocess metrics folder for `serve` and the job process it starts
    (crystallise.common.metrics): set before prometheus_client is imported, cleared at start."""
    import shutil

    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return
    folder = settings.data_dir / "metrics"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True, exist_ok=True)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(folder.resolve())


LOOPBACK = ("127.0.0.1", "localhost", "::1")


def warn_if_open(settings: Settings, host: str) -> None:
    """A loud notice when a key-less service was told to listen beyond loopback."""
    if settings.auth_enabled or host in LOOPBACK or host.startswith("127."):
        return
    print(
        f"WARNING: listening on {host} with NO service key (dev mode): anyone who can reach "
        "this port can use the service and spend its provider key. Set CRYSTALLISE_API_KEYS "
        "(or CRYSTALLISE_TENANTS), or listen on 127.0.0.1.",
        file=sys.stderr,
    )


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        settings = get_settings()
    except (ValidationError, SettingsError) as exc:
        print(f"configuration error: {_settings_problem(exc)}", file=sys.stderr)
        return 2
    if args.command in ("screen", "index", "criteria", "prisma"):
        return _researcher_command(args, settings)
    if args.command == "serve":
        return _serve(args, settings)
    if args.command == "db" and args.db_command == "upgrade":
        return _upgrade_database(settings)
    if args.command == "worker":
        return _worker(args, settings)
    parser.print_help()
    return 2


def _serve(args: argparse.Namespace, settings: Settings) -> int:
    _share_metrics(settings)  # before anything imports prometheus_client
    import uvicorn

    from crystallise.api.app import create_app

    host = args.host or settings.bind_host
    port = args.port or settings.api_port
    warn_if_open(settings, host)
    mode = "" if settings.auth_enabled else " (dev mode: no service key)"
    print(f"crystallise serve: listening on {host}:{port}{mode}", file=sys.stderr)
    uvicorn.run(create_app(settings), host=host, port=port, log_config=None, access_log=False)
    return 0


def _upgrade_database(settings: Settings) -> int:
    """`crystallise db upgrade`: the tables (Alembic) and, on PostgreSQL, the queue's."""
    from crystallise.db.engine import upgrade_database

    upgrade_database(settings.sqlalchemy_url)
    if settings.is_postgres:
        import asyncio

        from crystallise.jobs.engine.queue import build_queue_app, ensure_queue_schema

        async def queue_schema() -> None:
            app = build_queue_app(settings.postgres_conninfo)
            async with app.open_async():
                await ensure_queue_schema(app)

        asyncio.run(queue_schema())
    print("database upgraded to head")
    return 0


def _worker(args: argparse.Namespace, settings: Settings) -> int:
    import asyncio

    from crystallise.worker import run_worker

    if args.metrics_port:
        from prometheus_client import start_http_server

        start_http_server(args.metrics_port)
    asyncio.run(run_worker(settings, args.concurrency))
    return 0


if __name__ == "__main__":
    sys.exit(main())
