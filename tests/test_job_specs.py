"""Typed job specs (issue 10): stored with model_dump, loaded with model_validate, versioned."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from crystallise.indexer.spec import IndexerJobSpec
from crystallise.jobs.engine.spec import SPEC_VERSION, load_spec, prompt_versions
from crystallise.prompts.registry import list_prompts
from crystallise.screening.criteria import Criterion
from crystallise.screening.spec import ScreeningJobSpec

# A screening job config exactly as the release before typed specs stored it (version 0).
STORED_BEFORE = {
    "criteria": [{"id": "I1", "kind": "include", "text": "Population: adults"}],
    "questions": ["Q?"],
    "model": "gpt-4.1-mini",
    "model_explicit": True,
    "clustering_model": "gpt-4.1",
    "warnings": [],
    "repetitions": 3,
    "threshold": 1.0,
    "clusters_type": None,
    "label_system": None,
    "temperature": None,
    "prompt_versions": {"screening.labelling": "abc"},
}
# An indexer config of that release: the model lived only in the job row's column.
INDEXER_BEFORE = {
    "fields": [{"name": "n", "description": "sample size", "data_type_primary": "number"}],
    "project_context": None,
    "system_prompt": None,
    "mode": "full",
    "max_workers": 2,
    "batch_size": 50,
    "model_explicit": False,
    "warnings": [],
}


def test_specs_stored_by_the_previous_release_still_load() -> None:
    spec = load_spec(ScreeningJobSpec, "gpt-4.1-mini", STORED_BEFORE)
    assert spec.spec_version == SPEC_VERSION
    assert spec.criteria == [Criterion("I1", "include", "Population: adults")]
    indexer = load_spec(IndexerJobSpec, "gpt-5-mini", INDEXER_BEFORE)
    assert indexer.model == "gpt-5-mini" and indexer.fields[0].name == "n"


def test_round_trip_through_json_is_lossless() -> None:
    spec = load_spec(ScreeningJobSpec, "gpt-4.1-mini", STORED_BEFORE)
    stored = spec.model_dump(mode="json")
    assert stored["spec_version"] == SPEC_VERSION
    assert load_spec(ScreeningJobSpec, "ignored-when-stored", stored) == spec


def test_a_spec_from_a_newer_release_is_refused_clearly() -> None:
    with pytest.raises(ValidationError, match="newer than this release"):
        ScreeningJobSpec.model_validate({**STORED_BEFORE, "spec_version": SPEC_VERSION + 1})


def test_prompt_versions_come_from_the_registry() -> None:
    versions = prompt_versions("screening.")
    names = {p.name for p in list_prompts() if p.name.startswith("screening.")}
    assert set(versions) == names and "screening.theme_merge" in versions


def test_one_threshold_definition_bounds_every_job_threshold() -> None:
    from pydantic import TypeAdapter, ValidationError

    from crystallise.common.types import JobThreshold, Threshold

    job, plain = TypeAdapter(JobThreshold), TypeAdapter(Threshold)
    assert job.validate_python(0.5) == 1.0 and job.validate_python(0) == 1.0  # always accepted
    assert job.validate_python(3.5) == 3.5
    for bad in (-5, 5.5, float("nan")):
        with pytest.raises(ValidationError):
            job.validate_python(bad)
    with pytest.raises(ValidationError):
        plain.validate_python(0.5)  # a decision threshold (query, CLI) is 1-5
