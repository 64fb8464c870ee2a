"""The contract as a machine reads it (issue 24, item 7): every operation has a stable,
readable, unique id (what generated clients name their methods)."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient


def test_operation_ids_are_readable_and_unique(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    ids = [op["operationId"] for ops in spec["paths"].values() for op in ops.values()]
    assert len(ids) >= 44 and len(ids) == len(set(ids))
    assert all(re.fullmatch(r"[a-z]+(?:[A-Z][a-z]+)+|[a-z]+", i) for i in ids), ids
    assert {"createScreeningJob", "getScreeningJob", "createIndexerJob", "parseRecords",
            "getUsage", "calibrateScreeningJob"} <= set(ids)  # fmt: skip
