"""Active-learning ranking: a classifier trained on the labels so far ranks the unlabelled
records, most likely include first (the human screens from the top, labels, asks again).

TF-IDF of title + abstract and a class-balanced logistic regression (scikit-learn), the
setting of ASReview's default model family; an LLM ``final_score`` joins as one more feature
when every record has one. From one include and one exclude; with no labels of both kinds,
the order is by score when given, else as submitted.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.sparse import csr_matrix, hstack
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression

from crystallise.errors import BadInput

SCORE_WEIGHT = 3.0  # the LLM score's column scale against unit-norm TF-IDF rows
NGRAMS = (1, 1)
C = 10.0


@dataclass(frozen=True)
class RankRecord:
    id: str
    text: str
    label: int | None
    score: float | None = None  # an LLM final_score (1-5), if available


@dataclass(frozen=True)
class Ranking:
    ranking: list[tuple[str, float]]  # (id, probability of include), best first
    model: str  # "tfidf+logistic_regression[+llm_score]", "llm_score" or "none"
    trained_on: dict[str, int]  # includes / excludes the model learnt from


def prioritize(records: list[RankRecord]) -> Ranking:
    labels = np.array([-1 if r.label is None else r.label for r in records])
    unlabelled = np.flatnonzero(labels < 0)
    trained = {"includes": int((labels == 1).sum()), "excludes": int((labels == 0).sum())}
    with_scores = all(r.score is not None for r in records)
    if trained["includes"] and trained["excludes"]:
        probs, model = _classify(records, labels, unlabelled, with_scores)
    elif with_scores:
        probs = np.array([(float(records[i].score or 1) - 1) / 4 for i in unlabelled])
        model = "llm_score"
    else:
        probs, model = np.full(len(unlabelled), 0.5), "none"
    order = np.argsort(-probs, kind="stable")  # ties keep the submitted order
    ranking = [(records[unlabelled[i]].id, round(float(probs[i]), 6)) for i in order]
    return Ranking(ranking, model, trained)


def _classify(
    records: list[RankRecord], labels: np.ndarray, unlabelled: np.ndarray, with_scores: bool
) -> tuple[np.ndarray, str]:
    vectoriser = TfidfVectorizer(
        sublinear_tf=True, stop_words="english", ngram_range=NGRAMS, max_df=0.95, dtype=np.float32
    )
    try:
        features = vectoriser.fit_transform([r.text for r in records])
    except ValueError:  # "empty vocabulary": no record has a word of two or more letters
        raise BadInput(
            "records: no record has a word of two or more letters to learn from; send titles "
            "or abstracts (text), or LLM scores without labels"
        ) from None
    model = "tfidf+logistic_regression"
    if with_scores:
        column = np.array([[(float(r.score or 1) - 1) / 4 * SCORE_WEIGHT] for r in records])
        features = hstack([features, csr_matrix(column, dtype=np.float32)], format="csr")
        model += "+llm_score"
    train = labels >= 0
    classifier = LogisticRegression(class_weight="balanced", C=C, max_iter=1000)
    classifier.fit(features[train], labels[train])
    if len(unlabelled) == 0:
        return np.array([]), model
    return classifier.predict_proba(features[unlabelled])[:, 1], model
