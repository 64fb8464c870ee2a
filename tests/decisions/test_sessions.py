"""Prioritised-screening sessions through HTTP: answered after every label, stored (a new app
on the same database carries on), per tenant, expiring, and never a 500 on bad input."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text

from crystallise.api.app import create_app
from tests.conftest import make_settings
from tests.fake_openai import FakeOpenAIServer

ALICE = {"X-API-Key": "k-alice"}
BOB = {"X-API-Key": "k-bob"}
ADMIN = {"X-API-Key": "k-admin"}
TENANTS = {"alice": {"keys": ["k-alice"]}, "bob": {"keys": ["k-bob"]}}
URL = "/v1/screening/prioritize/sessions"


def _records() -> list[dict[str, object]]:
    """40 records: 10 about physician reminders (includes), 30 about rodents (excludes)."""
    topics = [("Reminders for physicians", "a nudge trial in primary care")] * 10
    topics += [("Rodent kidney", "mice model of liver disease")] * 30
    return [
        {"id": f"r{i}", "title": f"{t} {i}", "abstract": a, "label": None}
        for i, (t, a) in enumerate(topics)
    ]


def _truth(record_id: str) -> int:
    return int(int(record_id[1:]) < 10)


@pytest.fixture
def settings_kw(tmp_path: Path) -> dict[str, object]:
    return {
        "tenants": TENANTS,
        "admin_api_keys": "k-admin",
        "database_url": f"sqlite:///{tmp_path / 'sessions.db'}",
    }


@pytest.fixture
def app_client(
    tmp_path: Path, fake: FakeOpenAIServer, settings_kw: dict[str, object]
) -> Iterator[TestClient]:
    with TestClient(create_app(make_settings(tmp_path, fake, **settings_kw))) as client:
        yield client


def _start(client: TestClient, headers: dict[str, str] = ALICE) -> dict[str, object]:
    records = _records()
    records[0]["label"], records[15]["label"] = 1, 0
    r = client.post(URL, json={"records": records, "next_count": 3}, headers=headers)
    assert r.status_code == 201, r.text
    return dict(r.json())


def test_each_label_answers_the_next_records_and_the_stopping_rules(
    app_client: TestClient,
) -> None:
    body = _start(app_client)
    assert body["screened_count"] == 2 and body["includes_found"] == 1
    assert len(body["next"]) == 3 and all(_truth(n["id"]) for n in body["next"])
    assert body["model"].startswith("tfidf-bigram+svm")
    session = body["session_id"]
    screened = 2
    while not body["stopping"]["heuristic"]["safe_to_stop"] and body["next"]:
        pick = body["next"][0]["id"]
        r = app_client.post(
            f"{URL}/{session}/labels", json={"labels": [{"id": pick, "label": _truth(pick)}]},
            headers=ALICE,
        )  # fmt: skip
        assert r.status_code == 200, r.text
        body = r.json()
        screened += 1
        assert body["screened_count"] == screened
    # every include came first; the heuristic waited for a run of 50 excludes it cannot have
    assert body["includes_found"] == 10
    assert body["stopping"]["method"].startswith("Callaghan")
    assert "SAFE" in body["stopping"]["heuristic"]["method"]
    assert body["stopping"]["heuristic"]["run_needed"] == 50
    assert screened == 40  # 40 records: the run of 50 never comes, so all were screened


def test_a_session_survives_a_restart_and_corrections_replace_labels(
    tmp_path: Path, fake: FakeOpenAIServer, settings_kw: dict[str, object]
) -> None:
    settings = make_settings(tmp_path, fake, **settings_kw)
    with TestClient(create_app(settings)) as client:
        session = _start(client)["session_id"]
        labels = [{"id": "r1", "label": 1}, {"id": "r20", "label": 0}]
        r = client.post(f"{URL}/{session}/labels", json={"labels": labels}, headers=ALICE)
        assert r.json()["screened_count"] == 4 and r.json()["includes_found"] == 2
    with TestClient(create_app(settings)) as client:  # a new process: features rebuilt
        body = client.get(f"{URL}/{session}", headers=ALICE).json()
        assert body["screened_count"] == 4 and body["includes_found"] == 2
        fix = {"labels": [{"id": "r1", "label": 0}], "next_count": 5}
        body = client.post(f"{URL}/{session}/labels", json=fix, headers=ALICE).json()
        assert body["screened_count"] == 4 and body["includes_found"] == 1
        assert len(body["next"]) == 5
        assert {"r0", "r1", "r15", "r20"}.isdisjoint(n["id"] for n in body["next"])


def test_two_apps_on_one_database_see_each_others_labels(
    tmp_path: Path, fake: FakeOpenAIServer, settings_kw: dict[str, object]
) -> None:
    settings = make_settings(tmp_path, fake, **settings_kw)
    with TestClient(create_app(settings)) as one, TestClient(create_app(settings)) as two:
        session = _start(one)["session_id"]
        two.post(f"{URL}/{session}/labels", json={"labels": [{"id": "r2", "label": 1}]},
                 headers=ALICE)  # fmt: skip
        body = one.post(
            f"{URL}/{session}/labels", json={"labels": [{"id": "r3", "label": 1}]}, headers=ALICE
        ).json()
        assert body["screened_count"] == 4 and body["includes_found"] == 3


def test_sessions_belong_to_their_tenant_and_expire(
    app_client: TestClient, settings_kw: dict[str, object]
) -> None:
    session = _start(app_client)["session_id"]
    one = {"labels": [{"id": "r2", "label": 1}]}
    for method, path, body in (
        ("GET", f"{URL}/{session}", None),
        ("POST", f"{URL}/{session}/labels", one),
        ("DELETE", f"{URL}/{session}", None),
    ):
        r = app_client.request(method, path, json=body, headers=BOB)
        assert r.status_code == 404 and "Session not found" in r.text, (method, r.text)
    assert app_client.get(f"{URL}/{session}", headers=ADMIN).status_code == 200
    assert app_client.get(f"{URL}/{session}", headers=ALICE).status_code == 200
    engine = create_engine(str(settings_kw["database_url"]))
    with engine.begin() as conn:  # as if the TTL had passed
        conn.execute(
            text("UPDATE ranking_sessions SET expires_at = :t"),
            {"t": "2020-01-01 00:00:00.000000"},
        )
    app_client.app.state.services.ranking_sessions._live.clear()  # type: ignore[attr-defined]
    assert app_client.get(f"{URL}/{session}", headers=ALICE).status_code == 404
    services = app_client.app.state.services  # type: ignore[attr-defined]
    assert services.ranking_sessions.store.purge_expired() == 1
    with engine.begin() as conn:
        assert conn.execute(text("SELECT count(*) FROM ranking_labels")).scalar() == 0


def test_a_deleted_session_is_gone(app_client: TestClient) -> None:
    session = _start(app_client)["session_id"]
    assert app_client.delete(f"{URL}/{session}", headers=ALICE).status_code == 204
    assert app_client.get(f"{URL}/{session}", headers=ALICE).status_code == 404
    assert app_client.delete(f"{URL}/{session}", headers=ALICE).status_code == 404


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"records": [{"id": "a", "title": "x"}]}, "records"),
        ({"records": [{"id": "a", "title": "!!"}, {"id": "b", "title": "?"}]}, "records"),
        ({"records": [{"id": "a", "title": "one"}, {"id": "a", "title": "two"}]}, "duplicate"),
        ({"records": _records(), "next_count": 0}, "next_count"),
        ({"records": _records(), "target_recall": 1.5}, "target_recall"),
    ],
)
def test_bad_sessions_are_a_400_naming_the_field(
    app_client: TestClient, body: dict[str, object], field: str
) -> None:
    r = app_client.post(URL, json=body, headers=ALICE)
    assert r.status_code in (400, 422) and field in r.text, r.text
    assert r.status_code != 500


def test_bad_labels_are_a_400(app_client: TestClient) -> None:
    session = _start(app_client)["session_id"]
    path = f"{URL}/{session}/labels"
    r = app_client.post(path, json={"labels": [{"id": "nope", "label": 1}]}, headers=ALICE)
    assert r.status_code == 400 and "unknown record ids" in r.text
    r = app_client.post(path, json={"labels": [{"id": "r1", "label": 2}]}, headers=ALICE)
    assert r.status_code in (400, 422) and "label" in r.text
    r = app_client.get(f"{URL}/{session}?next_count=0", headers=ALICE)
    assert r.status_code == 400 and "next_count" in r.text


def test_ttl_setting_sets_the_expiry(
    tmp_path: Path, fake: FakeOpenAIServer, settings_kw: dict[str, object]
) -> None:
    settings = make_settings(tmp_path, fake, ranking_session_ttl_hours=2, **settings_kw)
    with TestClient(create_app(settings)) as client:
        body = _start(client)
    from datetime import datetime

    left = datetime.fromisoformat(str(body["expires_at"])) - datetime.now(
        datetime.fromisoformat(str(body["expires_at"])).tzinfo
    )
    assert timedelta(hours=1, minutes=59) < left <= timedelta(hours=2)


def test_once_a_rule_says_stop_the_records_without_an_abstract_come_first(
    app_client: TestClient,
) -> None:
    """The hand-over: a ranking cannot judge a title alone, so when a stopping rule fires the
    unscreened records sent without an abstract are listed first, and counted until done."""
    records = _records()
    records += [
        {"id": f"r{i}", "title": f"Rodent liver {i}", "abstract": "mice model", "label": None}
        for i in range(40, 160)
    ]
    records += [{"id": f"n{i}", "title": f"Letter {i}", "label": None} for i in range(40)]
    records[0]["label"], records[15]["label"] = 1, 0
    body = app_client.post(URL, json={"records": records, "next_count": 5}, headers=ALICE).json()
    assert body["unscreened_without_abstract"] == 40
    session, fired, screened = body["session_id"], False, set()
    for _ in range(len(records)):
        stop = body["stopping"]["safe_to_stop"] or body["stopping"]["heuristic"]["safe_to_stop"]
        left = body["unscreened_without_abstract"]
        assert left == 40 - sum(s.startswith("n") for s in screened)
        if stop and left == 0:
            break
        fired = fired or stop
        if stop:  # handed over: the records without an abstract come first
            first = [n["id"][0] for n in body["next"]][:left]
            assert len(first) == min(left, 5) and set(first) == {"n"}
        pick = body["next"][0]["id"]
        screened.add(pick)
        label = {"id": pick, "label": _truth(pick) if pick.startswith("r") else 0}
        body = app_client.post(
            f"{URL}/{session}/labels", json={"labels": [label]}, headers=ALICE
        ).json()
    assert fired and body["unscreened_without_abstract"] == 0
    assert body["includes_found"] == 10
    assert len(screened) + 2 < len(records)  # stopped before the end, every letter screened


def test_a_session_stored_before_titles_were_kept_apart_still_loads() -> None:
    """Sessions stored by the previous release hold ``[id, "title abstract", score]``."""
    from datetime import UTC, datetime

    from crystallise.db.ranking_sessions import StoredSession
    from crystallise.decisions.sessions import LiveSession

    old = [[f"r{i}", f"{t} {a}", None] for i, (t, a) in enumerate(
        [("Reminders for physicians", "a nudge trial")] * 5 + [("Rodent kidney", "mice")] * 5
    )]  # fmt: skip
    now = datetime.now(UTC)
    live = LiveSession.build(StoredSession("s", "", old, {"target_recall": 0.95,
                                                          "confidence": 0.95}, now, now))  # fmt: skip
    live.apply([(1, 0, 1), (2, 9, 0)])
    answer = live.answer(3)
    assert [n.id for n in answer.next] == ["r1", "r2", "r3"]
    assert answer.unscreened_without_abstract == 0


def test_before_an_include_and_an_exclude_a_session_ranks_by_llm_score(
    app_client: TestClient,
) -> None:
    records = [
        {"id": f"r{i}", "title": f"Trial of {w}", "abstract": "text", "score": 1 + i % 5}
        for i, w in enumerate(
            [
                "aspirin",
                "insulin",
                "statins",
                "exercise",
                "diet",
                "yoga",
                "sleep",
                "tea",
                "nudges",
                "apps",
            ]
        )
    ]
    records[0]["label"] = 0
    body = app_client.post(URL, json={"records": records, "next_count": 3}, headers=ALICE).json()
    assert body["model"] == "llm_score"
    assert [n["id"] for n in body["next"]] == ["r4", "r9", "r3"]  # score 5, 5, then 4
