"""Active-learning ranking: classifiers trained on the labels so far rank the unlabelled
records, most likely include first (the human screens from the top, labels, asks again).

The base is ASReview LAB's published default (ELAS u4), implemented with scikit-learn:
TF-IDF over title + abstract with word 1-2-grams (sublinear tf, min_df 1, max_df 0.95), a linear
SVM (C = 0.11, squared hinge) and the "balanced" sample weights (ratio 9.8). Two additions,
each measured on the dev sets (`evals/decisions.py`, numbers in `evals/RESULTS.md`):

- **Presumed excludes** (Cormack & Grossman's continuous active learning): every fit also
  sees 100 randomly drawn unlabelled records as excludes. Includes are rare, so nearly all of
  them are; early on, when the model has seen one include and one exclude, they teach it what
  an ordinary record looks like.
- **Titles weigh more** than abstracts: the bigram view reads the title twice; the unigram
  view also sees each title word as a feature of its own (``ttl<word>``), so a word in the
  title is evidence apart from the same word in the abstract.
- **Two views, chosen online.** A second SVM over word unigrams without stop words ranks
  better on reviews with many includes, the bigram view on reviews with few. A session keeps,
  for each view, where it ranked every record just before that record was labelled (its
  percentile among the unlabelled, at that view's last fit); over the last 100 labels, the view
  whose includes sat higher above its excludes ranks the next records (from 20 labels on; the
  bigram view before). The view in use is refitted on every label, the other on every 10th
  (and at once when the choice turns to it): one fit per label instead of two.

An LLM ``final_score`` joins both views as one more feature when every record has one.
Deterministic: the presumed excludes are drawn with a seed of the number of labels.
"""

from __future__ import annotations

import re
from collections import deque
from dataclasses import dataclass, field

import numpy as np
from scipy.sparse import csr_matrix, hstack, vstack
from scipy.stats import rankdata
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS, TfidfVectorizer
from sklearn.svm import LinearSVC

from crystallise.errors import BadInput

BIGRAMS = {"ngram_range": (1, 2), "sublinear_tf": True, "min_df": 1, "max_df": 0.95}
UNIGRAMS = {"sublinear_tf": True, "stop_words": "english", "max_df": 0.95}
SVM_C = 0.11
BALANCE_RATIO = 9.8
PRESUMED_EXCLUDES = 100
SELECTION_WINDOW = 100
SELECTION_MIN_LABELS = 20
OTHER_VIEW_EVERY = 10  # labels between fits of the view not in use
SCORE_WEIGHT = 3.0  # the LLM score's column scale against unit-norm TF-IDF rows
VIEWS = {"bigram": BIGRAMS, "unigram": UNIGRAMS}
Paper = tuple[str, str]  # (title, abstract)
_WORD = re.compile(r"(?u)\b\w\w+\b")  # TfidfVectorizer's own token pattern


def view_texts(name: str, papers: list[Paper]) -> list[str]:
    """The text one view reads: the bigram view the title twice, then the abstract; the
    unigram view the title and abstract, then each title word again as ``ttl<word>``."""
    if name == "bigram":
        return [f"{title} {title} {abstract}" for title, abstract in papers]
    return [
        f"{title} {abstract} "
        + " ".join("ttl" + w for w in _WORD.findall(title.lower()) if w not in ENGLISH_STOP_WORDS)
        for title, abstract in papers
    ]


@dataclass(frozen=True)
class Features:
    """The TF-IDF views of a set of records (both, or one by name), built once."""

    views: tuple[csr_matrix, ...]
    names: tuple[str, ...]
    with_scores: bool

    @classmethod
    def build(
        cls, papers: list[Paper], scores: list[float] | None = None, names: tuple[str, ...] = ()
    ) -> Features:
        names = names or tuple(VIEWS)
        views = [_tfidf(view_texts(name, papers), VIEWS[name]) for name in names]
        if scores is not None:
            column = csr_matrix(
                np.array([[(s - 1) / 4 * SCORE_WEIGHT] for s in scores], dtype=np.float32)
            )
            views = [hstack([v, column], format="csr") for v in views]
            for view in views:
                view.sort_indices()
        return cls(tuple(views), names, scores is not None)

    @property
    def size(self) -> int:
        return int(self.views[0].shape[0])

    def model_name(self, view: int) -> str:
        """What ranked: ``tfidf-bigram+svm+presumed-excludes[+llm_score]``."""
        name = f"tfidf-{self.names[view]}+svm+presumed-excludes"
        return name + ("+llm_score" if self.with_scores else "")


def _tfidf(texts: list[str], options: dict[str, object]) -> csr_matrix:
    try:
        vectoriser = TfidfVectorizer(dtype=np.float32, **options)  # type: ignore[arg-type]
        matrix = vectoriser.fit_transform(texts).tocsr()
        matrix.sort_indices()  # once, not in every fit (scikit-learn sorts unsorted input)
        return matrix
    except ValueError:  # "empty vocabulary": no record has a word of two or more letters
        raise BadInput(
            "records: no record has a word of two or more letters to learn from; send titles "
            "or abstracts (text), or LLM scores without labels"
        ) from None


def balanced_weights(y: np.ndarray) -> np.ndarray:
    """ASReview's "balanced" sample weights: excludes weigh includes / (ratio × excludes)."""
    includes, excludes = int((y == 1).sum()), int((y == 0).sum())
    weights = np.where(y == 1, 1.0, includes / (BALANCE_RATIO * max(excludes, 1)))
    return np.asarray(weights * (len(y) / weights.sum()))


def svm_scores(
    features: csr_matrix, labelled: np.ndarray, y: np.ndarray, presumed: np.ndarray
) -> np.ndarray:
    """A balanced linear SVM's margin for every record, trained on ``labelled`` plus
    ``presumed`` (unlabelled records taken as excludes, weighted like the real excludes)."""
    weights = balanced_weights(y)
    exclude_weight = float(weights[y == 0].mean())
    train = vstack([features[labelled], features[presumed]], format="csr")
    target = np.concatenate([y, np.zeros(len(presumed), dtype=np.int64)])
    weights = np.concatenate([weights, np.full(len(presumed), exclude_weight)])
    model = LinearSVC(C=SVM_C, loss="squared_hinge", random_state=0)
    model.fit(train, target, sample_weight=weights)
    # the margin by hand: decision_function would re-check and up-cast all the records
    coef = model.coef_.ravel().astype(features.dtype)
    return np.asarray(features @ coef, dtype=np.float64) + float(model.intercept_[0])


@dataclass
class Ranker:
    """The ranking state of one screening session: the features, and each view's percentile
    of every record at its last fit before the record was labelled (to choose the view
    online). The view in use is refitted on every label; the other every ``OTHER_VIEW_EVERY``
    labels, and at once when the choice turns to it."""

    features: Features
    history: deque[tuple[int, float, float]] = field(
        default_factory=lambda: deque(maxlen=SELECTION_WINDOW)
    )
    view: int = 0
    _ranks: list[np.ndarray | None] = field(default_factory=lambda: [None, None])
    _fitted_at: list[int] = field(default_factory=lambda: [-OTHER_VIEW_EVERY] * 2)
    _seen: int = 0  # labels already in the history (the order only grows)

    def rank(self, order: list[int], labels: list[int]) -> np.ndarray:
        """Scores for every record (labelled ones are -inf), given the labelled records'
        indices in screening order and their labels. Needs an include and an exclude."""
        self._remember(order, labels)
        labelled = np.zeros(self.features.size, dtype=bool)
        labelled[order] = True
        fit = _Fit(order, labels, labelled)
        margins: dict[int, np.ndarray] = {self.view: self._fit(self.view, fit)}
        if len(self.features.views) == 2:
            other = 1 - self.view
            if len(order) - self._fitted_at[other] >= OTHER_VIEW_EVERY:
                margins[other] = self._fit(other, fit)
            self.view = self._choose()
            if self.view not in margins:
                margins[self.view] = self._fit(self.view, fit)
        return np.where(labelled, -np.inf, margins[self.view])

    def _fit(self, view: int, fit: _Fit) -> np.ndarray:
        # one view after the other: liblinear's random generator is global to the process,
        # so fits in parallel threads would not be reproducible
        margins = svm_scores(self.features.views[view], fit.idx, fit.y, fit.presumed)
        if len(self.features.views) == 2:
            self._ranks[view] = _percentiles(margins, fit.unlabelled)
            self._fitted_at[view] = len(fit.idx)
        return margins

    def _remember(self, order: list[int], labels: list[int]) -> None:
        bigram, unigram = self._ranks
        if bigram is not None and unigram is not None:
            for index, label in zip(order[self._seen :], labels[self._seen :], strict=True):
                if not (np.isnan(bigram[index]) or np.isnan(unigram[index])):
                    self.history.append((label, float(bigram[index]), float(unigram[index])))
        self._seen = len(order)

    def _choose(self) -> int:
        if len(self.history) < SELECTION_MIN_LABELS:
            return 0
        seen = np.array(self.history)
        includes, excludes = seen[seen[:, 0] == 1], seen[seen[:, 0] == 0]
        if not len(includes) or not len(excludes):
            return self.view
        gap = includes[:, 1:].mean(axis=0) - excludes[:, 1:].mean(axis=0)
        return int(gap[1] > gap[0])


class _Fit:
    """One fit's training set: the labels in screening order, and the presumed excludes drawn
    with a seed of the number of labels."""

    def __init__(self, order: list[int], labels: list[int], labelled: np.ndarray) -> None:
        self.idx = np.asarray(order, dtype=np.int64)
        self.y = np.asarray(labels, dtype=np.int64)
        self.unlabelled = np.flatnonzero(~labelled)
        rng = np.random.default_rng(len(order))
        count = min(PRESUMED_EXCLUDES, len(self.unlabelled))
        self.presumed = rng.choice(self.unlabelled, count, replace=False)


def _percentiles(values: np.ndarray, among: np.ndarray) -> np.ndarray:
    """Each record of ``among``'s percentile rank among them; NaN for every other record."""
    out = np.full(len(values), np.nan)
    if len(among):
        out[among] = rankdata(values[among]) / len(among)
    return out
