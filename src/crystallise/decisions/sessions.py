"""Prioritised-screening sessions: the records once, then "next?" after every label.

A session's records and labels are stored (``RankingSessionStore``), so it survives a
restart and is shared by the API processes; its features and ranker live in this process
(at most ``LIVE_SESSIONS`` at once, least recently used dropped first) and are rebuilt from the
stored records when needed. Each answer applies the labels any process stored since this one
last looked, retrains (`decisions.ranking`, two linear SVMs over features built once), and
asks both stopping rules. All CPU and database work runs off the event loop.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np

from crystallise.config.limits import check_record_count
from crystallise.config.settings import Settings
from crystallise.db.ranking_sessions import RankingSessionStore, StoredSession
from crystallise.decisions import schemas as s
from crystallise.decisions.ranking import Features, Ranker
from crystallise.errors import BadInput, NotFound
from crystallise.tenancy import job_scope

LIVE_SESSIONS = 4  # features of a 20,000-record session take ~100 MB


@dataclass
class LiveSession:
    stored: StoredSession
    ranker: Ranker
    index: dict[str, int]
    expires_at: datetime
    no_abstract: np.ndarray  # records sent without an abstract
    llm_scores: np.ndarray | None  # every record's final_score, when all have one
    order: list[int] = field(default_factory=list)  # records in the order first labelled
    labels: dict[int, int] = field(default_factory=dict)  # the latest label of each
    seq: int = 0  # the last stored label applied
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    @classmethod
    def build(cls, stored: StoredSession) -> LiveSession:
        records = [_fields(r) for r in stored.records]
        given = [r.score for r in records]
        scored = [float(s) for s in given if s is not None]
        scores = scored if len(scored) == len(given) else None
        features = Features.build([(r.title, r.abstract) for r in records], scores)
        index = {r.id: i for i, r in enumerate(records)}
        no_abstract = np.array([not r.abstract.strip() for r in records], dtype=bool)
        llm_scores = np.array(scores) if scores is not None else None
        return cls(stored, Ranker(features), index, stored.expires_at, no_abstract, llm_scores)

    def apply(self, rows: list[tuple[int, int, int]]) -> None:
        for seq, record, label in rows:
            if record not in self.labels:
                self.order.append(record)
            self.labels[record] = label
            self.seq = max(self.seq, seq)

    def answer(self, next_count: int) -> s.SessionResponse:
        """Retrain and rank; the next records, both stopping answers. CPU: run in a thread."""
        from crystallise.decisions.service import stopping_response

        in_order = [self.labels[i] for i in self.order]  # the labels in screening order
        ranked, model = self._rank(in_order)
        records, options = self.stored.records, self.stored.options
        stopping = stopping_response(
            in_order, len(records), options["target_recall"], options["confidence"]
        )
        unjudged = self.no_abstract & np.isfinite(ranked)  # unscreened, no abstract
        key = ranked
        if stopping.safe_to_stop or stopping.heuristic.safe_to_stop:
            # the hand-over: a ranking cannot judge a title alone, so before the stop the
            # unscreened records without an abstract come first
            key = np.where(unjudged, ranked + _HAND_OVER, ranked)
        picks = np.argsort(-key, kind="stable")[:next_count]
        picks = picks[np.isfinite(key[picks])]
        return s.SessionResponse(
            session_id=self.stored.id,
            expires_at=self.expires_at.isoformat(),
            total_records=len(records),
            screened_count=len(self.order),
            includes_found=sum(in_order),
            next=[
                s.RankedRecord(id=str(records[i][0]), probability=_squash(ranked[i])) for i in picks
            ],
            unscreened_without_abstract=int(unjudged.sum()),
            model=model,
            stopping=stopping,
            recall_estimate=stopping.recall_estimate,
        )

    def _rank(self, in_order: list[int]) -> tuple[np.ndarray, str]:
        size = self.ranker.features.size
        if 0 < sum(in_order) < len(in_order):
            ranked = self.ranker.rank(self.order, in_order)
            return ranked, self.ranker.features.model_name(self.ranker.view)
        labelled = np.zeros(size, dtype=bool)
        labelled[self.order] = True
        if self.llm_scores is not None:  # no include or no exclude yet: by LLM score
            return np.where(labelled, -np.inf, (self.llm_scores - 1) / 4), "llm_score"
        as_given = -np.arange(size, dtype=np.float64) / size  # as submitted
        return np.where(labelled, -np.inf, as_given), "none"


_HAND_OVER = 1e6  # added to the score of a record handed over: above any margin


@dataclass(frozen=True)
class _Record:
    id: str
    title: str
    abstract: str
    score: float | None


def _fields(stored: list[Any]) -> _Record:
    """A stored record: ``[id, title, abstract, score]``; sessions stored before titles were
    kept apart hold ``[id, "title abstract", score]`` (read as an abstract alone)."""
    if len(stored) == 3:
        return _Record(str(stored[0]), "", str(stored[1]), stored[2])
    return _Record(str(stored[0]), str(stored[1]), str(stored[2]), stored[3])


def _squash(margin: float) -> float:
    return round(float(1 / (1 + np.exp(-2 * margin))), 6)


class RankingSessions:
    """The sessions of this process, over the shared store."""

    def __init__(self, store: RankingSessionStore, settings: Settings) -> None:
        self.store = store
        self.settings = settings
        self._live: OrderedDict[str, LiveSession] = OrderedDict()

    @property
    def ttl(self) -> timedelta:
        return timedelta(hours=self.settings.ranking_session_ttl_hours)

    async def create(self, body: s.SessionCreateRequest) -> s.SessionResponse:
        check_record_count(self.settings, "records", len(body.records))
        records = [[r.id, r.title, r.abstract, r.score] for r in body.records]
        options = {"target_recall": body.target_recall, "confidence": body.confidence}
        options["next_count"] = body.next_count
        session_id = str(uuid.uuid4())
        never = datetime.min.replace(tzinfo=UTC)
        stored = StoredSession(session_id, "", records, options, never, never)
        live = await asyncio.to_thread(LiveSession.build, stored)  # 400 before anything is kept
        live.stored = await asyncio.to_thread(
            self.store.create, session_id, records, options, self.ttl
        )
        live.expires_at = live.stored.expires_at
        self._keep(live)
        labels = [(i, r.label) for i, r in enumerate(body.records) if r.label is not None]
        if labels:
            return await self._label(live, labels, body.next_count)
        return await asyncio.to_thread(live.answer, body.next_count)

    async def label(self, session_id: str, body: s.SessionLabelsRequest) -> s.SessionResponse:
        live = await self._find(session_id)
        unknown = [r.id for r in body.labels if r.id not in live.index]
        if unknown:
            raise BadInput(f"labels: unknown record ids {unknown[:10]}")
        labels = [(live.index[r.id], r.label) for r in body.labels]
        count = body.next_count or int(live.stored.options.get("next_count", 10))
        return await self._label(live, labels, count)

    async def view(self, session_id: str, next_count: int | None) -> s.SessionResponse:
        live = await self._find(session_id)
        async with live.lock:
            rows = await asyncio.to_thread(self.store.labels_after, session_id, live.seq)
            live.apply(rows)
            count = next_count or int(live.stored.options.get("next_count", 10))
            return await asyncio.to_thread(live.answer, count)

    async def delete(self, session_id: str) -> None:
        self._live.pop(session_id, None)
        if not await asyncio.to_thread(self.store.delete, session_id):
            raise NotFound(f"Session not found: {session_id}")

    async def purge_expired(self) -> int:
        return await asyncio.to_thread(self.store.purge_expired)

    async def _label(
        self, live: LiveSession, labels: list[tuple[int, int]], next_count: int
    ) -> s.SessionResponse:
        async with live.lock:
            stored = await asyncio.to_thread(
                self.store.add_labels, live.stored.id, labels, self.ttl, live.seq
            )
            if stored is None:  # deleted or purged by another process
                self._live.pop(live.stored.id, None)
                raise NotFound(f"Session not found: {live.stored.id}")
            rows, live.expires_at = stored
            live.apply(rows)
            return await asyncio.to_thread(live.answer, next_count)

    async def _find(self, session_id: str) -> LiveSession:
        """The live session (scoped to the caller's tenant, unexpired), rebuilt from the store
        when this process does not hold it."""
        live = self._live.get(session_id)
        scope = job_scope()
        owned = live is not None and (scope is None or live.stored.tenant == scope)
        if live is not None and owned and live.expires_at > datetime.now(UTC):
            self._live.move_to_end(session_id)
            return live
        stored = await asyncio.to_thread(self.store.get, session_id)
        if stored is None:
            self._live.pop(session_id, None)
            raise NotFound(f"Session not found: {session_id}")
        if live is not None:
            live.expires_at = stored.expires_at
            return live
        live = await asyncio.to_thread(LiveSession.build, stored)
        self._keep(live)
        return live

    def _keep(self, live: LiveSession) -> None:
        self._live[live.stored.id] = live
        self._live.move_to_end(live.stored.id)
        while len(self._live) > LIVE_SESSIONS:
            self._live.popitem(last=False)
