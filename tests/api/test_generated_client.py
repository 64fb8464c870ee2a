"""A generated client (issue 24, item 7): openapi-python-client turns /openapi.json into a
typed Python client whose method names are the operation ids, and a mock screening job runs
through its typed methods."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
import time
from pathlib import Path

from fastapi.testclient import TestClient


def test_a_mock_job_through_the_generated_client(client: TestClient, tmp_path: Path) -> None:
    spec = tmp_path / "openapi.json"
    spec.write_text(json.dumps(client.get("/openapi.json").json()))
    generator = Path(sys.executable).parent / "openapi-python-client"
    out = tmp_path / "crystallise_client"
    done = subprocess.run(
        [str(generator), "generate", "--path", str(spec), "--output-path", str(out),
         "--meta", "none"],
        capture_output=True, text=True, timeout=300, cwd=tmp_path,
    )  # fmt: skip
    assert out.is_dir(), done.stdout + done.stderr
    sys.path.insert(0, str(tmp_path))
    try:
        generated = importlib.import_module("crystallise_client")
        create = importlib.import_module("crystallise_client.api.screening.create_screening_job")
        get = importlib.import_module("crystallise_client.api.screening.get_screening_job")
        models = importlib.import_module("crystallise_client.models")
    finally:
        sys.path.remove(str(tmp_path))
    api = generated.Client(base_url="http://testserver").set_httpx_client(client)
    body = models.ScreeningRequest.from_dict(
        {"papers": [{"id": "p1", "title": "A trial", "abstract": "Exercise."}], "mock": True}
    )
    created = create.sync(client=api, body=body)
    assert isinstance(created, models.JobCreated)
    deadline = time.monotonic() + 30
    job = get.sync(job_id=created.job_id, client=api)
    while job.status != "completed":
        assert time.monotonic() < deadline
        time.sleep(0.05)
        job = get.sync(job_id=created.job_id, client=api)
    assert isinstance(job, models.ScreeningJobResponse)
    result = job.results[0]
    assert isinstance(result, models.ScreeningResult)  # typed, not a dict
    assert result.id == "p1" and 1 <= result.final_score <= 5
