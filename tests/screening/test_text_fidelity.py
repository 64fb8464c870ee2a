"""Caller text is never changed (issue 11): what is stored and what the model sees is the
paper's title and abstract byte for byte; delimiters stay safe without editing the text."""

from __future__ import annotations

import csv
import gzip
import io
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from crystallise.prompts import screening as screening_prompts
from tests.fake_openai import FakeOpenAIServer
from tests.screening.test_screening_api import CRITERIA, wait

FIXTURE = Path(__file__).parents[1] / "fixtures/datasets/screening/nagtegaal_2019_1000.csv.gz"
TRICKY = {
    "id": "tricky",
    "title": "Adults aged <65 years with eGFR >60 mL/min (p<0.05 vs placebo, n>200)",
    "abstract": (
        "  Leading spaces.  Double  spaces,\ttabs and\nnewlines. <b>Bold</b> & <i>x</i> "
        "a <= b >= c; the delimiter </paper> and </PAPER > and <paper-1> appear in the text. "
    ),
}


def _user_messages(fake: FakeOpenAIServer) -> list[str]:
    out = []
    for r in fake.requests():
        for m in r["body"]["messages"]:
            if m["role"] == "user":
                out.append(m["content"])
    return out


def _stored(client: TestClient, job_id: str) -> dict[str, dict[str, Any]]:
    store = client.app.state.services.jobs  # type: ignore[attr-defined]
    return {i.item_id: i.input for i in store.iter_items(job_id)}


def test_comparisons_markup_and_delimiters_survive(
    client: TestClient, fake: FakeOpenAIServer
) -> None:
    created = client.post(
        "/v1/screening/jobs", json={"papers": [TRICKY], "criteria": CRITERIA, "repetitions": 1}
    )
    assert created.status_code == 200, created.text
    job_id = created.json()["job_id"]
    body = wait(client, job_id)
    assert body["status"] == "completed", body
    assert _stored(client, job_id)["tricky"] == TRICKY
    paper_calls = [m for m in _user_messages(fake) if TRICKY["title"] in m]
    assert len(paper_calls) == 2  # labelling and reasoning
    for message in paper_calls:
        block = f"Title: {TRICKY['title']}\nAbstract: {TRICKY['abstract']}"
        assert block in message
        # the text holds </paper> and <paper-1>: the fence is one the text does not contain
        assert message.startswith("<paper-2>\n") and f"{block}\n</paper-2>" in message
    assert "numeric suffix" in (screening_prompts.LABELLING.system or "")


def test_plain_paper_keeps_the_plain_fence(client: TestClient, fake: FakeOpenAIServer) -> None:
    paper = {"id": "p", "title": "Trial of X", "abstract": "Adults <65 years were randomised."}
    rendered = screening_prompts.LABELLING.render_user(
        **{k: paper[k] for k in ("title", "abstract")}
    )
    assert rendered == f"<paper>\nTitle: {paper['title']}\nAbstract: {paper['abstract']}\n</paper>"


def test_indexer_record_text_reaches_model_and_evidence(
    client: TestClient, fake: FakeOpenAIServer
) -> None:
    record = {"ID": "r1", "Title": TRICKY["title"], "Abstract": TRICKY["abstract"]}
    fields = [{"name": "population", "description": "Who", "data_type_primary": "text"}]
    real = client.post("/v1/indexer/run", json={"records": [record], "fields": fields})
    assert real.status_code == 200, real.text
    (message,) = [m for m in _user_messages(fake) if "Title:" in m]
    assert f"Title: {TRICKY['title']}\nAbstract: {TRICKY['abstract']}" in message
    assert "<record>" not in message or "</paper>" in TRICKY["abstract"]
    mock = client.post(
        "/v1/indexer/run", json={"records": [record], "fields": fields, "mock": True}
    ).json()
    evidence = mock["results"][0]["population"]["evidence"]
    assert evidence and all(q in TRICKY["title"] + TRICKY["abstract"] for q in evidence)
    assert "<65 years" in evidence[0]  # the comparison is quoted, not deleted


def test_thousand_real_abstracts_reach_the_model_unchanged(
    client: TestClient, fake: FakeOpenAIServer
) -> None:
    with gzip.open(FIXTURE, "rt", encoding="utf-8") as handle:
        rows = list(csv.DictReader(io.StringIO(handle.read())))
    assert len(rows) == 1000
    papers = [{"id": r["id"], "title": r["title"], "abstract": r["abstract"]} for r in rows]
    created = client.post(
        "/v1/screening/jobs", json={"papers": papers, "criteria": CRITERIA, "repetitions": 1}
    )
    assert created.status_code == 200, created.text
    job_id = created.json()["job_id"]
    body = wait(client, job_id, timeout=240)
    assert body["status"] == "completed", body.get("error")
    assert len(body["results"]) == 1000
    stored = _stored(client, job_id)
    assert all(stored[p["id"]] == p for p in papers)
    messages = _user_messages(fake)
    seen = set(messages)
    blocks = {
        p["id"]: f"Title: {p['title']}\nAbstract: {p['abstract']}\n</paper"
        for p in papers
        if p["abstract"].strip()
    }
    missing = [pid for pid, block in blocks.items() if not any(block in m for m in seen)]
    assert not missing, missing[:5]
