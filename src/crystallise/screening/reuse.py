"""Result reuse across jobs (living reviews): a paper screened before under the same setup is
not screened again. The key of a paper is the hash of its normalised title and abstract and
of everything that decides its result: criteria, questions, model, repetitions, scoring,
temperature, the labelling rubric and the labelling and reasoning prompt versions, and the
tenant (no result crosses tenants). The answered model version is not in the key (it is
known only after a call); a job records it, and a reused result carries ``reused_from``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from typing import Any

from crystallise.common.quotes import normalise
from crystallise.screening.spec import ScreeningJobSpec

_PROMPTS = ("screening.labelling", "screening.reasoning")


def setup_fingerprint(spec: ScreeningJobSpec, tenant: str) -> str:
    setup = {
        "tenant": tenant,
        "criteria": [[c.id, c.kind, c.text] for c in spec.criteria],
        "questions": spec.questions,
        "model": spec.model,
        "repetitions": spec.repetitions,
        "scoring": spec.scoring,
        "temperature": spec.temperature,
        "label_system": spec.label_system,
        "prompts": {k: spec.prompt_versions.get(k) for k in _PROMPTS},
    }
    return hashlib.sha256(json.dumps(setup, sort_keys=True).encode()).hexdigest()


def paper_key(title: str, abstract: str, setup: str) -> str:
    text = f"{normalise(title)}\n{normalise(abstract)}"
    return hashlib.sha256(f"{setup}\n{text}".encode()).hexdigest()


def reuse_keys(papers: Iterable[Any], spec: ScreeningJobSpec, tenant: str) -> list[str | None]:
    """One key per paper (anything with ``title`` and ``abstract``); the caller gives a mock
    job no keys (canned results are never reused)."""
    setup = setup_fingerprint(spec, tenant)
    return [paper_key(p.title or "", p.abstract or "", setup) for p in papers]
