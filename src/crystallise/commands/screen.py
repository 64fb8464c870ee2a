"""``crystallise screen`` and ``crystallise index``: a references file in, a results file out.

Reads the file (any format ``records.parse`` reads), builds the request, runs the job here or
on a server (``--url``) with a progress bar (rate, ETA, running cost), writes the output, and
prints a summary table. Running the same command again resumes a killed run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from pathlib import Path
from typing import Any, cast

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.prompt import Confirm as RichConfirm
from rich.table import Table

from crystallise.commands.files import load_criteria, load_fields
from crystallise.commands.local import RunResult, Snapshot, run_local
from crystallise.common.types import CLI_THRESHOLD, check_threshold
from crystallise.config.settings import Settings
from crystallise.db.jobs import JobKind
from crystallise.errors import BadInput
from crystallise.indexer.schemas import IndexerRequest
from crystallise.records.export import ExportFormat
from crystallise.records.parse import parse_records
from crystallise.records.schemas import ParseResult, RecordFormat
from crystallise.screening.schemas import ScreeningRequest

OUT_FORMATS = ("ris", "csv", "jsonl", "xlsx")
SHOWN_WARNINGS = 20


class ProgressView:
    """A rich progress bar fed with job snapshots: items done, rate, ETA and running cost."""

    def __init__(self, console: Console, label: str) -> None:
        self.progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rate]}"),
            TimeRemainingColumn(),
            TextColumn("{task.fields[cost]}"),
            console=console,
        )
        self.task = self.progress.add_task(label, total=None, rate="", cost="")
        self.first: tuple[float, int] | None = None

    def __call__(self, snap: Snapshot) -> None:
        now = time.monotonic()
        self.first = self.first or (now, snap.done)
        elapsed, gained = now - self.first[0], snap.done - self.first[1]
        rate = f"{gained / elapsed:.1f}/s" if elapsed > 1 and gained else ""
        self.progress.update(self.task, completed=snap.done, total=snap.total,
                             description=snap.stage or snap.status, rate=rate,
                             cost=f"${snap.cost_usd:.4f}")  # fmt: skip


def read_records(
    path: Path, fmt: RecordFormat | None, encoding: str | None, console: Console
) -> ParseResult:
    """The file's records, with its warnings and dedup log reported on the console."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise BadInput(f"{path}: cannot read it ({exc.strerror})") from None
    parsed = parse_records(data, format=fmt, filename=path.name, encoding=encoding)
    console.print(f"Read {parsed.count} records from {path} ({parsed.format}, {parsed.encoding}).")
    for warning in parsed.warnings[:SHOWN_WARNINGS]:
        where = f"line {warning.line}: " if warning.line else ""
        console.print(f"  [yellow]warning[/] {where}{warning.message}")
    if len(parsed.warnings) > SHOWN_WARNINGS:
        console.print(f"  … and {len(parsed.warnings) - SHOWN_WARNINGS} more warnings")
    if parsed.duplicates:
        console.print(
            f"  {len(parsed.duplicates)} possible duplicates (kept, marked in the output):"
        )
        for dup in parsed.duplicates[:SHOWN_WARNINGS]:
            console.print(
                f"    record {dup.position} ({dup.id}) = {dup.duplicate_of} by {dup.reason}"
            )
    if not parsed.records:
        raise BadInput(f"{path}: no records could be read")
    return parsed


def output_target(
    args: argparse.Namespace, parsed: ParseResult, suffix: str
) -> tuple[Path, ExportFormat]:
    """The output file and its format: ``--out``'s extension, else beside the input."""
    source = Path(args.file)
    if args.out:
        out = Path(args.out)
        fmt = out.suffix.lower().lstrip(".")
        if fmt not in OUT_FORMATS:
            raise BadInput(f"--out: {out.name} must end in .ris, .csv, .jsonl or .xlsx")
        return writable(out, source), cast(ExportFormat, fmt)
    fmt = "ris" if parsed.format == "ris" else "csv"
    out = source.with_name(f"{source.stem}.{suffix}.{fmt}")
    return writable(out, source), cast(ExportFormat, fmt)


def writable(out: Path, source: Path) -> Path:
    """``out``, checked before any work: never the input file, in a folder that exists and
    can be written, and not a folder itself."""
    if out.resolve() == source.resolve():
        raise BadInput(f"--out: {out} is the input file; choose another name")
    folder = out.resolve().parent
    if not folder.is_dir():
        raise BadInput(f"--out: the folder {folder} does not exist")
    if out.is_dir() or not os.access(folder, os.W_OK):
        raise BadInput(f"--out: cannot write {out} (a folder, or no write permission)")
    return out


def confirmer(console: Console, limit: float, yes: bool) -> Any:
    """Ask before spending more than ``limit`` USD (``--yes`` answers for the user)."""

    def confirm(cost: float) -> bool:
        console.print(f"Estimated cost: [bold]${cost:.4f}[/] (an estimate, ±20-30%).")
        if cost <= limit or yes:
            return True
        if not sys.stdin.isatty():
            console.print(f"[red]Above --confirm-above ${limit:.2f}; add --yes to go ahead.[/]")
            return False
        return bool(RichConfirm.ask("Go ahead?", console=console, default=False))

    return confirm


def _papers(parsed: ParseResult) -> list[dict[str, Any]]:
    return [r.model_dump(exclude={"position", "line"}) for r in parsed.records]


def screening_request(
    args: argparse.Namespace, parsed: ParseResult
) -> tuple[ScreeningRequest, float]:
    """The screening request for these records and the criteria file; and the threshold."""
    criteria = load_criteria(Path(args.criteria))
    check_threshold(args.threshold, "--threshold")
    body = ScreeningRequest(
        papers=_papers(parsed),  # type: ignore[arg-type]
        criteria=criteria.api_criteria(),
        questions=criteria.questions,
        model=args.model or criteria.model,
        repetitions=args.repetitions or criteria.repetitions,
        mock=args.mock,
    )
    return body, args.threshold or criteria.threshold


def indexing_request(args: argparse.Namespace, parsed: ParseResult) -> IndexerRequest:
    fields = load_fields(Path(args.fields))
    records = [{"ID": r.id, "Title": r.title, "Abstract": r.abstract} for r in parsed.records]
    return IndexerRequest(records=records, fields=fields.fields, model=args.model or fields.model,
                          mock=args.mock)  # fmt: skip


def summary_table(result: RunResult, out: Path) -> Table:
    table = Table(title=f"{result.status}: job {result.job_id} ({result.how})", show_header=False)
    table.add_column("what")
    table.add_column("count", justify="right")
    for title, counts in (("decision", result.summary.decisions), ("flag", result.summary.flags),
                          ("cluster", result.summary.clusters), ("status", result.summary.statuses)):  # fmt: skip
        for name, count in sorted(counts.items(), key=lambda kv: -kv[1]):
            table.add_row(f"{title}: {name}", str(count))
    if result.reused is not None:
        total = sum(result.summary.decisions.values())
        table.add_row("reused (screened before)", str(result.reused))
        table.add_row("screened now", str(max(total - result.reused, 0)))
    table.add_row("cost", f"${result.cost_usd:.4f}")
    table.add_row("time", f"{result.seconds:.1f} s")
    table.add_row("output", str(out))
    return table


def run_command(args: argparse.Namespace, settings: Settings, kind: JobKind) -> int:
    """``screen`` or ``index``: read, run (here or on ``--url``), write, summarise."""
    console = Console(stderr=True)
    parsed = read_records(Path(args.file), args.format, args.encoding, console)
    threshold: float | None = None
    if kind == "screening":
        body: ScreeningRequest | IndexerRequest
        body, threshold = screening_request(args, parsed)
    else:
        body = indexing_request(args, parsed)
    path, fmt = output_target(args, parsed, "screened" if kind == "screening" else "indexed")
    labels = _labels(args, parsed)  # checked before any work
    duplicates = _duplicates_of_earlier(args, parsed, console)
    confirm = confirmer(console, args.confirm_above, args.yes)
    view = ProgressView(console, "starting")
    with view.progress:
        if args.url:
            from crystallise.commands.remote import run_remote

            headers = {k: v for k, v in (("X-API-Key", args.api_key), ("X-OpenAI-API-Key",
                       os.environ.get("OPENAI_API_KEY"))) if v}  # fmt: skip
            result = run_remote(
                args.url, headers, kind, body, (path, fmt, threshold), confirm, view
            )  # type: ignore[arg-type]
        else:
            out = (path, fmt, threshold)
            result = asyncio.run(run_local(settings, kind, body, out, confirm, view))  # type: ignore[arg-type]
    console.print(summary_table(result, path))
    if result.error:
        console.print(f"[red]{result.error}[/]")
    if duplicates is not None:
        total = sum(result.summary.decisions.values())
        reused = result.reused or 0
        console.print(
            f"Update of {args.update_of}: reused {reused}, screened {total - reused} new, "
            f"duplicates {duplicates} (records of the earlier file found again)"
        )
    if labels is not None and result.status == "completed":
        _report_agreement(args, settings, result.job_id, labels, threshold, path, console)
    return 0 if result.status == "completed" else 1


def _duplicates_of_earlier(
    args: argparse.Namespace, parsed: ParseResult, console: Console
) -> int | None:
    """With --update-of: how many records repeat one of the earlier output's (by DOI, PMID,
    title + year). Their results are reused by content; the full file is written."""
    if not getattr(args, "update_of", None):
        return None
    from crystallise.jobs.update import split_new
    from crystallise.screening.schemas import Paper

    earlier = Path(args.update_of)
    if not earlier.is_file():
        raise BadInput(f"--update-of: no file {earlier}")
    old = parse_records(earlier.read_bytes(), filename=earlier.name).records
    new = [Paper.model_validate(p) for p in _papers(parsed)]
    _, duplicates = split_new([r.model_dump() for r in old], new, strict_ids=False)
    console.print(f"  {len(duplicates)} of {len(new)} records were in {earlier.name}")
    return len(duplicates)


def _labels(args: argparse.Namespace, parsed: ParseResult) -> dict[str, dict[str, int]] | None:
    if not getattr(args, "labels", None):
        return None
    from crystallise.commands.audit import read_labels

    by_doi = {r.doi.lower(): r.id for r in parsed.records if r.doi}
    return read_labels(Path(args.labels), by_doi)


def _report_agreement(
    args: argparse.Namespace,
    settings: Settings,
    job_id: str,
    labels: dict[str, dict[str, int]],
    threshold: float | None,
    out: Path,
    console: Console,
) -> None:
    """The agreement table and report after the job; the answer as JSON beside the output."""
    from crystallise.commands.audit import agreement_for, agreement_table
    from crystallise.decisions.schemas import AgreementRequest

    body = AgreementRequest(reviewers=labels, threshold=threshold if threshold else CLI_THRESHOLD)
    headers = {"X-API-Key": args.api_key} if args.api_key else None
    answer = agreement_for(settings, job_id, body, args.url, headers)
    console.print(agreement_table(answer))
    console.print(answer["report"])
    target = out.with_name(out.stem + ".agreement.json")
    target.write_text(json.dumps(answer, indent=2), encoding="utf-8")
    console.print(f"Agreement written to {target}")
