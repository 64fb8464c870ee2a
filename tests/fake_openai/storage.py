"""Files, the Batch API and vector stores, as the provider keeps them."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from tests.fake_openai.config import _error, _public
from tests.fake_openai.generate import _text_of
from tests.fake_openai.limits import FakeState


class StorageRoutes:
    """The provider's stored objects (files, batches, vector stores); mixed into FakeOpenAI,
    whose ``state`` holds them and whose gate (``_gate``), token count and chat answers
    (``_tokens``, ``_record``, ``_refusal``, ``_answer``) a batch's lines go through."""

    state: FakeState

    # ---- files and vector stores ----------------------------------------------------
    async def files_create(self, request: Request) -> Response:
        _key, err, _ = await self._gate(request, "files", 1)
        if err is not None:
            return err
        form = await request.form()
        upload: Any = form.get("file")
        content = await upload.read() if upload is not None else b""
        file_id = f"file-{uuid.uuid4().hex[:24]}"
        obj = {
            "id": file_id,
            "object": "file",
            "bytes": len(content),
            "created_at": int(time.time()),
            "filename": getattr(upload, "filename", "upload"),
            "purpose": form.get("purpose", "assistants"),
            "status": "processed",
        }
        self.state.files[file_id] = obj
        self.state.file_content[file_id] = content
        self.state.calls["files"] += 1
        return JSONResponse(obj)

    async def files_list(self, request: Request) -> Response:
        return JSONResponse(
            {
                "object": "list",
                "data": list(self.state.files.values()),
                "has_more": False,
            }
        )

    async def files_get(self, request: Request) -> Response:
        obj = self.state.files.get(request.path_params["file_id"])
        return (
            JSONResponse(obj)
            if obj
            else _error(404, "No such File object", "invalid_request_error")
        )

    async def files_delete(self, request: Request) -> Response:
        file_id = request.path_params["file_id"]
        if self.state.files.pop(file_id, None) is None:
            return _error(404, "No such File object", "invalid_request_error")
        return JSONResponse({"id": file_id, "object": "file", "deleted": True})

    async def files_content(self, request: Request) -> Response:
        content = self.state.file_content.get(request.path_params["file_id"])
        if content is None:
            return _error(404, "No such File object", "invalid_request_error")
        return Response(content, media_type="application/octet-stream")

    # ---- Batch API ----------------------------------------------------------------------
    async def batches_create(self, request: Request) -> Response:
        """A batch over an uploaded JSONL file; it completes ``batch_delay_s`` after creation
        (answered when next read), each line answered as the chat route would."""
        _key, err, _ = await self._gate(request, "batches", 1)
        if err is not None:
            return err
        if not self.state.config.batch_api:
            return Response("Not Found", status_code=404)
        body = await request.json()
        file_id = body.get("input_file_id")
        if file_id not in self.state.file_content:
            return _error(400, f"Invalid input_file_id: {file_id}", "invalid_request_error")
        if body.get("endpoint") != "/v1/chat/completions" or body.get("completion_window") != "24h":
            return _error(400, "Unsupported endpoint or completion_window", "invalid_request_error")
        lines = self.state.file_content[file_id].decode().splitlines()
        now = time.time()
        batch = {
            "id": f"batch_{uuid.uuid4().hex[:24]}",
            "object": "batch",
            "endpoint": body["endpoint"],
            "input_file_id": file_id,
            "completion_window": "24h",
            "status": "in_progress",
            "output_file_id": None,
            "error_file_id": None,
            "created_at": int(now),
            "in_progress_at": int(now),
            "request_counts": {"total": len(lines), "completed": 0, "failed": 0},
            "metadata": body.get("metadata"),
            "_ready_at": now + self.state.config.batch_delay_s,
        }
        self.state.batches[batch["id"]] = batch
        self.state.calls["batches"] += 1
        return JSONResponse(_public(batch))

    async def batches_get(self, request: Request) -> Response:
        batch = self.state.batches.get(request.path_params["batch_id"])
        if batch is None:
            return _error(404, "No such Batch object", "invalid_request_error")
        if batch["status"] == "in_progress" and time.time() >= batch["_ready_at"]:
            self._run_batch(batch)
        elif batch["status"] == "cancelling":
            batch["status"] = "cancelled"
            batch["cancelled_at"] = int(time.time())
        return JSONResponse(_public(batch))

    async def batches_cancel(self, request: Request) -> Response:
        batch = self.state.batches.get(request.path_params["batch_id"])
        if batch is None:
            return _error(404, "No such Batch object", "invalid_request_error")
        if batch["status"] in ("in_progress", "validating"):
            batch["status"] = "cancelling"
        self.state.calls["batches_cancel"] += 1
        return JSONResponse(_public(batch))

    def _run_batch(self, batch: dict[str, Any]) -> None:
        """Answer every line; lines whose text contains ``fail_match`` (or a dialect refuses)
        fail inside the batch, the rest land in the output file."""
        cfg = self.state.config
        outputs: list[str] = []
        errors: list[str] = []
        for raw in self.state.file_content[batch["input_file_id"]].decode().splitlines():
            line = json.loads(raw)
            body = line["body"]
            messages = body.get("messages", [])
            text = _text_of(messages)
            rf = body.get("response_format") or {}
            tools = body.get("tools") or []
            prompt_tokens = self._tokens(text + json.dumps(rf) + json.dumps(tools))
            record = self._record("batch_line", "", body, prompt_tokens)
            refusal = self._refusal(body, rf, tools)
            failed: dict[str, Any] | None = None
            if refusal is not None:
                failed = {"status_code": 400, "body": json.loads(refusal.body)}
            elif cfg.fail_match and cfg.fail_match in text:
                failed = {
                    "status_code": cfg.fail_match_status,
                    "body": {
                        "error": {"message": "Rejected (injected for this text).", "type": "x"}
                    },
                }
            if failed is not None:
                errors.append(
                    json.dumps(
                        {
                            "id": f"batch_req_{uuid.uuid4().hex[:12]}",
                            "custom_id": line["custom_id"],
                            "response": {**failed, "request_id": "req_x"},
                            "error": None,
                        }
                    )
                )
                continue
            n = 1 if self.dialect.ignores_n else int(body.get("n") or 1)
            payload = self._answer(body, text, prompt_tokens, n, time.monotonic(), record)
            outputs.append(
                json.dumps(
                    {
                        "id": f"batch_req_{uuid.uuid4().hex[:12]}",
                        "custom_id": line["custom_id"],
                        "response": {"status_code": 200, "request_id": "req_x", "body": payload},
                        "error": None,
                    }
                )
            )
        for key, lines in (("output_file_id", outputs), ("error_file_id", errors)):
            if lines:
                file_id = f"file-{uuid.uuid4().hex[:24]}"
                content = ("\n".join(lines) + "\n").encode()
                self.state.file_content[file_id] = content
                self.state.files[file_id] = {
                    "id": file_id,
                    "object": "file",
                    "bytes": len(content),
                    "created_at": int(time.time()),
                    "filename": f"{batch['id']}_{key}.jsonl",
                    "purpose": "batch_output",
                    "status": "processed",
                }
                batch[key] = file_id
        batch["request_counts"] = {
            "total": len(outputs) + len(errors),
            "completed": len(outputs),
            "failed": len(errors),
        }
        batch["status"] = "completed"
        batch["completed_at"] = int(time.time())

    async def vs_create(self, request: Request) -> Response:
        _key, err, _ = await self._gate(request, "vector_stores", 1)
        if err is not None:
            return err
        body = await request.json()
        vs_id = f"vs_{uuid.uuid4().hex[:24]}"
        obj = {
            "id": vs_id,
            "object": "vector_store",
            "created_at": int(time.time()),
            "name": body.get("name"),
            "usage_bytes": 0,
            "status": "completed",
            "last_active_at": None,
            "metadata": None,
            "expires_at": None,
            "file_counts": {
                "in_progress": 0,
                "completed": 0,
                "failed": 0,
                "cancelled": 0,
                "total": 0,
            },
            "files": {},
        }
        self.state.vector_stores[vs_id] = obj
        return JSONResponse({k: v for k, v in obj.items() if k != "files"})

    async def vs_get(self, request: Request) -> Response:
        obj = self.state.vector_stores.get(request.path_params["vs_id"])
        if not obj:
            return _error(404, "No such vector store", "invalid_request_error")
        return JSONResponse({k: v for k, v in obj.items() if k != "files"})

    async def vs_delete(self, request: Request) -> Response:
        vs_id = request.path_params["vs_id"]
        if self.state.vector_stores.pop(vs_id, None) is None:
            return _error(404, "No such vector store", "invalid_request_error")
        return JSONResponse({"id": vs_id, "object": "vector_store.deleted", "deleted": True})

    async def vs_file_add(self, request: Request) -> Response:
        vs = self.state.vector_stores.get(request.path_params["vs_id"])
        body = await request.json()
        if not vs or body.get("file_id") not in self.state.files:
            return _error(404, "No such vector store or file", "invalid_request_error")
        entry = {
            "id": body["file_id"],
            "object": "vector_store.file",
            "created_at": int(time.time()),
            "vector_store_id": vs["id"],
            "status": "in_progress",
            "usage_bytes": 0,
            "last_error": None,
            "polls": 0,
        }
        vs["files"][body["file_id"]] = entry
        vs["file_counts"]["in_progress"] += 1
        vs["file_counts"]["total"] += 1
        return JSONResponse({k: v for k, v in entry.items() if k != "polls"})

    async def vs_file_get(self, request: Request) -> Response:
        vs = self.state.vector_stores.get(request.path_params["vs_id"])
        entry = vs["files"].get(request.path_params["file_id"]) if vs else None
        if not entry or vs is None:
            return _error(404, "No such vector store file", "invalid_request_error")
        entry["polls"] += 1
        if entry["status"] == "in_progress" and entry["polls"] >= 2:  # processed after a poll
            entry["status"] = "completed"
            vs["file_counts"]["in_progress"] -= 1
            vs["file_counts"]["completed"] += 1
        return JSONResponse({k: v for k, v in entry.items() if k != "polls"})
