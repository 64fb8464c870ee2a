"""OpenAI's Batch API: chat-completion requests written as JSONL, uploaded with the Files
API, run by the Batches API within 24 hours at half the price, and read back from the
batch's output and error files.

Only the transport lives here; which requests a job sends, where it keeps the batch ids
and what it does with each answer is the pipeline's (``screening/provider_batch.py``).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Final, Literal, TypeVar

from crystallise.llm.client import LLMClient
from crystallise.llm.errors import ErrorCategory, LLMError
from crystallise.llm.retry import async_retry_with_backoff

MAX_REQUESTS_PER_BATCH = 50_000  # OpenAI's limit per input file
MAX_BYTES_PER_BATCH = 190 * 1024 * 1024  # 200 MB per input file, less a margin
ENDPOINT: Final[Literal["/v1/chat/completions"]] = "/v1/chat/completions"
WINDOW: Final[Literal["24h"]] = "24h"
TERMINAL = frozenset({"completed", "failed", "expired", "cancelled"})

T = TypeVar("T")


def request_line(custom_id: str, body: dict[str, Any]) -> bytes:
    """One line of a batch input file."""
    line = {"custom_id": custom_id, "method": "POST", "url": ENDPOINT, "body": body}
    return json.dumps(line, separators=(",", ":")).encode() + b"\n"


def split_lines(lines: list[bytes]) -> list[list[bytes]]:
    """Input files within the limits: at most MAX_REQUESTS_PER_BATCH lines and
    MAX_BYTES_PER_BATCH bytes each."""
    files: list[list[bytes]] = []
    current: list[bytes] = []
    size = 0
    for line in lines:
        if current and (
            len(current) >= MAX_REQUESTS_PER_BATCH or size + len(line) > MAX_BYTES_PER_BATCH
        ):
            files.append(current)
            current, size = [], 0
        current.append(line)
        size += len(line)
    if current:
        files.append(current)
    return files


@dataclass
class BatchOutput:
    """A finished batch's lines: the completion body of each answered request, and why
    each other request failed."""

    answers: dict[str, dict[str, Any]] = field(default_factory=dict)
    failures: dict[str, str] = field(default_factory=dict)


class BatchAPI:
    """Files + Batches calls with one key, with the client's retry policy for transient
    faults; other faults raise classified LLMErrors."""

    def __init__(self, llm: LLMClient, api_key: str) -> None:
        self.llm = llm
        self.client = llm.openai_client(api_key)

    async def _call(self, what: str, call: Callable[[], Awaitable[T]]) -> T:
        try:
            return await async_retry_with_backoff(call, delays=self.llm.retry_delays)
        except LLMError as exc:
            if exc.category in (ErrorCategory.VALIDATION, ErrorCategory.UNKNOWN):
                raise LLMError(
                    f"Batch API: {what} failed at {self.llm.base_url}: {exc.message} (does "
                    'this server offer /files and /batches? submit without "batch" if not)',
                    exc.category,
                    job_wide=True,
                ) from exc
            raise

    async def submit(self, lines: list[bytes], metadata: dict[str, str]) -> dict[str, Any]:
        """Upload one input file and start its batch; the batch object as JSON."""
        content = b"".join(lines)
        upload = await self._call(
            "uploading the input file",
            lambda: self.client.files.create(
                file=("crystallise-batch.jsonl", content, "application/jsonl"), purpose="batch"
            ),
        )
        batch = await self._call(
            "creating the batch",
            lambda: self.client.batches.create(
                input_file_id=upload.id,
                endpoint=ENDPOINT,
                completion_window=WINDOW,
                metadata=metadata,
            ),
        )
        return batch.model_dump(mode="json")

    async def retrieve(self, batch_id: str) -> dict[str, Any]:
        batch = await self._call(
            "reading the batch", lambda: self.client.batches.retrieve(batch_id)
        )
        return batch.model_dump(mode="json")

    async def cancel(self, batch_id: str) -> dict[str, Any]:
        batch = await self._call(
            "cancelling the batch", lambda: self.client.batches.cancel(batch_id)
        )
        return batch.model_dump(mode="json")

    async def output(self, *file_ids: str | None) -> BatchOutput:
        """The answers and failures in a finished batch's output and error files."""
        out = BatchOutput()
        for file_id in file_ids:
            if not file_id:
                continue
            response = await self._call("reading its output", _content(self.client, file_id))
            for raw in response.text.splitlines():
                _read_line(raw, out)
        return out


def _content(client: Any, file_id: str) -> Callable[[], Awaitable[Any]]:
    return lambda: client.files.content(file_id)


def _read_line(raw: str, out: BatchOutput) -> None:
    if not raw.strip():
        return
    try:
        line = json.loads(raw)
    except json.JSONDecodeError:
        return  # a torn line names no request: that request is sent again
    custom_id = str(line.get("custom_id") or "")
    response = line.get("response") or {}
    body = response.get("body")
    if response.get("status_code") == 200 and isinstance(body, dict):
        out.answers[custom_id] = body
        return
    error = line.get("error") or (body or {}).get("error") or {}
    message = error.get("message") if isinstance(error, dict) else str(error)
    status = response.get("status_code")
    out.failures[custom_id] = f"{status or 'error'}: {message or 'no answer'}"
