"""One ranking from labels given all at once (``POST /v1/screening/prioritize``): the
session's model (`decisions.ranking`) fitted once, on the bigram view up to 5,000 records and
on the unigram view beyond (the bigram features of 20,000 records take ~10 s to build on two
cores; a session builds both once). With no labels of both kinds, the order is by LLM score
when every record has one, else as submitted.

``probability`` is the logistic of the SVM's margin: a 0-1 ranking score, not a calibrated
probability (calibrate on a random sample for that).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from crystallise.decisions.ranking import Features, Ranker

BIGRAM_LIMIT = 5_000


@dataclass(frozen=True)
class RankRecord:
    id: str
    title: str
    abstract: str
    label: int | None
    score: float | None = None  # an LLM final_score (1-5), if available


@dataclass(frozen=True)
class Ranking:
    ranking: list[tuple[str, float]]  # (id, ranking score in 0-1), best first
    model: str  # "tfidf-<view>+svm+presumed-excludes[+llm_score]", "llm_score" or "none"
    trained_on: dict[str, int]  # includes / excludes the model learnt from


def prioritize(records: list[RankRecord]) -> Ranking:
    labels = np.array([-1 if r.label is None else r.label for r in records])
    unlabelled = np.flatnonzero(labels < 0)
    trained = {"includes": int((labels == 1).sum()), "excludes": int((labels == 0).sum())}
    with_scores = all(r.score is not None for r in records)
    if trained["includes"] and trained["excludes"]:
        scores = [float(r.score or 1) for r in records] if with_scores else None
        view = "bigram" if len(records) <= BIGRAM_LIMIT else "unigram"
        papers = [(r.title, r.abstract) for r in records]
        features = Features.build(papers, scores, (view,))
        order = [int(i) for i in np.flatnonzero(labels >= 0)]
        margins = Ranker(features).rank(order, [int(labels[i]) for i in order])[unlabelled]
        probs, model = 1 / (1 + np.exp(-2 * margins)), features.model_name(0)
    elif with_scores:
        probs = np.array([(float(records[i].score or 1) - 1) / 4 for i in unlabelled])
        model = "llm_score"
    else:
        probs, model = np.full(len(unlabelled), 0.5), "none"
    order_ = np.argsort(-probs, kind="stable")  # ties keep the submitted order
    ranking = [(records[unlabelled[i]].id, round(float(probs[i]), 6)) for i in order_]
    return Ranking(ranking, model, trained)
