"""Run a screening or indexing job on a running Crystallise server (``--url``) over HTTP.

The same Idempotency-Key as a local run, so the same command finds the same job on the
server: a killed CLI leaves the server's job running, and running the command again follows
that job to its end instead of starting another one.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import httpx

from crystallise.commands.local import (
    POLL_S,
    Confirm,
    RunResult,
    Show,
    Snapshot,
    cli_idempotency_key,
    write_atomically,
)
from crystallise.db.jobs import TERMINAL_STATUSES, JobKind
from crystallise.errors import BadInput, Unavailable
from crystallise.indexer.schemas import IndexerRequest
from crystallise.records.export import ExportFormat, ExportSummary
from crystallise.screening.schemas import ScreeningRequest


def _checked(response: httpx.Response) -> dict[str, Any]:
    if response.status_code >= 400:
        detail = (
            response.json().get("detail")
            if "json" in response.headers.get("content-type", "")
            else response.text[:300]
        )
        message = detail.get("message") if isinstance(detail, dict) else detail
        raise BadInput(f"the server answered {response.status_code}: {message}")
    result: dict[str, Any] = response.json()
    return result


def _estimate(client: httpx.Client, kind: JobKind, body: Any) -> float:
    if kind == "screening":
        payload = {"papers_count": len(body.papers), "model": body.model,
                   "repetitions": body.repetitions, "criteria_count": len(body.criteria)}  # fmt: skip
    else:
        payload = {"record_count": len(body.records), "model": body.model,
                   "fields": [f.model_dump() for f in body.fields]}  # fmt: skip
    answer = _checked(client.post(f"/v1/{kind}/estimate", json=payload))
    return float(answer["estimated_cost_usd"])


def _follow(
    client: httpx.Client, kind: JobKind, job_id: str, total: int, show: Show
) -> dict[str, Any]:
    while True:
        state = _checked(client.get(f"/v1/{kind}/jobs/{job_id}"))
        progress = float(state.get("progress") or 0.0)
        cost = float((state.get("usage") or {}).get("estimated_cost_usd") or 0.0)
        status = str(state["status"])
        show(
            Snapshot(int(progress * total), total, progress, state.get("stage") or "", cost, status)
        )
        if status in TERMINAL_STATUSES:
            return state
        time.sleep(POLL_S)


def _download(client: httpx.Client, kind: JobKind, job_id: str, params: dict[str, Any]) -> Any:
    return client.stream("GET", f"/v1/{kind}/jobs/{job_id}/export", params=params)


def _export(
    client: httpx.Client, kind: JobKind, job_id: str, out: tuple[Path, ExportFormat, float | None]
) -> ExportSummary:
    """Stream the export into the file, then its JSON Lines form into the summary counts."""
    path, fmt, threshold = out
    params: dict[str, Any] = {} if threshold is None else {"threshold": threshold}
    with _download(client, kind, job_id, {**params, "format": fmt}) as answer:
        if answer.status_code >= 400:
            answer.read()
            _checked(answer)
        write_atomically(path, answer.iter_bytes())
    summary = ExportSummary()
    with _download(client, kind, job_id, {**params, "format": "jsonl"}) as answer:
        for line in answer.iter_lines():
            if line.strip():
                summary.add(json.loads(line))
    return summary


def run_remote(
    url: str,
    headers: dict[str, str],
    kind: JobKind,
    body: ScreeningRequest | IndexerRequest,
    out: tuple[Path, ExportFormat, float | None],
    confirm: Confirm,
    show: Show,
) -> RunResult:
    """Submit (or find) the job on the server, follow it, stream its export to the file."""
    total = len(body.papers) if isinstance(body, ScreeningRequest) else len(body.records)
    headers = {**headers, "Idempotency-Key": cli_idempotency_key(body)}
    started = time.monotonic()
    try:
        with httpx.Client(base_url=url.rstrip("/"), headers=headers, timeout=120) as client:
            if not body.mock and not confirm(_estimate(client, kind, body)):
                raise BadInput(
                    "not started: the estimated cost is above --confirm-above (add --yes)"
                )
            created = _checked(client.post(f"/v1/{kind}/jobs", content=body.model_dump_json(),
                                           headers={"content-type": "application/json"}))  # fmt: skip
            job_id = str(created["job_id"])
            state = _follow(client, kind, job_id, total, show)
            summary = _export(client, kind, job_id, out)
    except httpx.HTTPError as exc:
        raise Unavailable(f"cannot reach {url}: {exc}") from None
    cost = float((state.get("usage") or {}).get("estimated_cost_usd") or 0.0)
    seconds = time.monotonic() - started
    reused = (state.get("usage") or {}).get("reused_count")
    return RunResult(
        job_id, state["status"], "server", seconds, cost, summary, state.get("error"), reused
    )
