"""OpenAI file and vector-store management (for the Responses API's file_search), sync + retry."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import openai

from crystallise.llm.errors import ErrorCategory, LLMError
from crystallise.llm.retry import retry_with_backoff


class OpenAIResources:
    """Create/upload/poll/delete files and vector stores with the §4.2 sync retry policy."""

    def __init__(
        self,
        api_key: str,
        *,
        base_url: str | None = None,
        max_retries: int = 5,
        base_backoff: float = 1.5,
        jitter: float = 0.25,
    ) -> None:
        self._client = openai.OpenAI(api_key=api_key, base_url=base_url or None, max_retries=0)
        self._retry = {"max_retries": max_retries, "base_backoff": base_backoff, "jitter": jitter}

    def close(self) -> None:
        self._client.close()

    def upload_file(self, path: Path | str, purpose: str = "assistants") -> str:
        """Upload a file; returns its id."""
        file_path = Path(path)

        def call() -> Any:
            with file_path.open("rb") as fh:
                return self._client.files.create(file=(file_path.name, fh), purpose=purpose)  # type: ignore[arg-type]

        return str(retry_with_backoff(call, **self._retry).id)  # type: ignore[arg-type]

    def delete_file(self, file_id: str) -> bool:
        result = retry_with_backoff(lambda: self._client.files.delete(file_id), **self._retry)  # type: ignore[arg-type]
        return bool(result.deleted)

    def create_vector_store(self, name: str) -> str:
        store = retry_with_backoff(
            lambda: self._client.vector_stores.create(name=name),
            **self._retry,  # type: ignore[arg-type]
        )
        return str(store.id)

    def delete_vector_store(self, vector_store_id: str) -> bool:
        result = retry_with_backoff(
            lambda: self._client.vector_stores.delete(vector_store_id),
            **self._retry,  # type: ignore[arg-type]
        )
        return bool(result.deleted)

    def add_file_to_vector_store(
        self,
        vector_store_id: str,
        file_id: str,
        *,
        poll_interval_s: float = 1.0,
        timeout_s: float = 300.0,
    ) -> str:
        """Attach a file and poll until processed; returns the final status ``completed``."""
        retry_with_backoff(
            lambda: self._client.vector_stores.files.create(
                vector_store_id=vector_store_id, file_id=file_id
            ),
            **self._retry,  # type: ignore[arg-type]
        )
        deadline = time.monotonic() + timeout_s
        while True:
            entry = retry_with_backoff(
                lambda: self._client.vector_stores.files.retrieve(
                    file_id, vector_store_id=vector_store_id
                ),
                **self._retry,  # type: ignore[arg-type]
            )
            if entry.status == "completed":
                return "completed"
            if entry.status in ("failed", "cancelled"):
                raise LLMError(
                    f"Vector store file {file_id} ended {entry.status}", ErrorCategory.VALIDATION
                )
            if time.monotonic() > deadline:
                raise LLMError(
                    f"Vector store file {file_id} not processed in time", ErrorCategory.TIMEOUT
                )
            time.sleep(poll_interval_s)
