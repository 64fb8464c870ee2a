"""Screening request/response schemas and the models' output schemas."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    ValidationInfo,
    field_validator,
    model_validator,
)

from crystallise.common.types import JOB_THRESHOLD, JobThreshold, ModelName, ProjectId, Repetitions
from crystallise.records.formats import year_of
from crystallise.screening.criteria import CriterionInput

if TYPE_CHECKING:
    from crystallise.db.jobs import ItemRow
    from crystallise.db.models import ScreeningJob


def plain_text(value: Any) -> str:
    """Caller text exactly as sent (None is empty): never stripped, collapsed or de-tagged.
    Prompt delimiters are kept safe by ``Prompt.render_user``, not by editing the text."""
    if value is None:
        return ""
    return value if isinstance(value, str) else str(value)


def has_text(value: str | None) -> bool:
    return bool(value and value.strip())


class Paper(BaseModel):
    model_config = ConfigDict(extra="ignore")
    id: str = Field(min_length=1, max_length=512)
    title: str = ""
    abstract: str = ""
    # Bibliographic fields of an imported record (POST /v1/records/parse returns them): never
    # sent to a model, kept with the paper so exports write them back.
    authors: list[str] | None = None
    year: int | None = Field(None, ge=0, le=9999)
    journal: str | None = None
    doi: str | None = None
    pmid: str | None = None
    keywords: list[str] | None = None
    source: dict[str, Any] | None = Field(
        None, description="the record's original fields as imported; exported unchanged"
    )
    duplicate_of: str | None = Field(None, description="the import's dedup log: an earlier id")

    # Extra fields were ignored before these existed: a value of another shape is normalised
    # or dropped, never a 400 that would break an existing caller.
    @field_validator("authors", "keywords", mode="before")
    @classmethod
    def _as_str_list(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [v.strip() for v in value.split(";") if v.strip()] or None
        if isinstance(value, list):
            return [str(v) for v in value if isinstance(v, str | int | float)] or None
        return None

    @field_validator("year", mode="before")
    @classmethod
    def _as_year(cls, value: Any) -> Any:
        if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 9999:
            return value
        return year_of(value) if isinstance(value, str) else None

    @field_validator("journal", "doi", "pmid", "duplicate_of", mode="before")
    @classmethod
    def _as_str(cls, value: Any) -> Any:
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            return None
        return str(value)

    @field_validator("source", mode="before")
    @classmethod
    def _as_dict(cls, value: Any) -> Any:
        return value if isinstance(value, dict) else None

    @field_validator("id", mode="before")
    @classmethod
    def _id_to_str(cls, value: Any) -> Any:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return str(value)
        return value.strip() if isinstance(value, str) else value

    @field_validator("title", "abstract", mode="before")
    @classmethod
    def _none_is_empty(cls, value: Any) -> Any:
        return "" if value is None else value


def _null_is_default(cls: type[BaseModel], value: Any, info: ValidationInfo) -> Any:
    """An optional setting sent as null means its default (not a 400)."""
    return cls.model_fields[info.field_name or ""].default if value is None else value


class ScreeningRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")
    papers: list[Paper] = Field(min_length=1)
    criteria: list[CriterionInput] = Field(default_factory=list)
    questions: list[str] = Field(default_factory=list)
    model: ModelName | None = None
    repetitions: Repetitions = 5
    threshold: JobThreshold = JOB_THRESHOLD
    clusters_type: Literal["include", "exclude"] | None = None
    project_id: ProjectId | None = None
    mock: bool = False
    max_estimated_cost_usd: float | None = Field(None, ge=0, allow_inf_nan=False)
    # samples: `repetitions` independent scores; distribution: P(score = 1..5) from one
    # answer's token log-probabilities (models that return them)
    scoring: Literal["samples", "distribution"] = "samples"
    # labelling and reasoning through the provider's Batch API: half the price, finished
    # within 24 hours (the job stays running meanwhile)
    batch: StrictBool = False
    # reuse the stored results of papers this tenant screened before under the same setup
    # (an updated search pays only for its new records); false screens every paper again
    reuse: StrictBool = True

    _options_null_is_default = field_validator("scoring", "batch", "reuse", mode="before")(
        _null_is_default
    )

    @model_validator(mode="after")
    def _unique_ids(self) -> ScreeningRequest:
        _check_unique_ids(self.papers)
        return self


def _check_unique_ids(papers: list[Paper]) -> None:
    seen: set[str] = set()
    dupes: list[str] = []
    for paper in papers:
        if paper.id in seen and paper.id not in dupes:
            dupes.append(paper.id)
        seen.add(paper.id)
    if dupes:
        shown = ", ".join(dupes[:10]) + (" ..." if len(dupes) > 10 else "")
        raise ValueError(f"papers: duplicate paper ids: {shown}")


class UpdateRequest(BaseModel):
    """The re-run search's papers (the same shape as job creation)."""

    model_config = ConfigDict(extra="ignore")
    papers: list[Paper] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_ids(self) -> UpdateRequest:
        _check_unique_ids(self.papers)
        return self


class JobUpdated(BaseModel):
    job_id: str
    status: str
    progress: float
    stage: str
    update_of: str
    added_count: int = Field(description="new papers, screened")
    duplicate_count: int = Field(description="papers that repeat one of the old job's")
    duplicate_ids: list[str]
    reused_count: int = Field(description="papers whose stored results the new job reuses")


class EstimateRequest(BaseModel):
    papers_count: int = Field(ge=1, le=10_000_000, strict=True)
    model: ModelName | None = None
    repetitions: Repetitions = 5
    criteria_count: int = Field(0, ge=0, le=10_000, strict=True)
    scoring: Literal["samples", "distribution"] = "samples"
    batch: StrictBool = False

    _options_null_is_default = field_validator("scoring", "batch", mode="before")(_null_is_default)


class EstimateResponse(BaseModel):
    estimated_input_tokens: int
    estimated_cached_input_tokens: int | None = Field(
        None, description="Part of the input expected to be served from the prompt cache"
    )
    estimated_output_tokens: int
    estimated_cost_usd: float
    cost_per_paper_usd: float | None = None
    assumptions: list[str] | None = Field(None, description="What the estimate assumed")
    model: str
    # set when the model asked for (or the default) is retired and its successor was priced
    warnings: list[str] | None = None
    papers_count: int
    repetitions: int
    confidence: str = "approximate"
    disclaimer: str


class JobCreated(BaseModel):
    job_id: str
    status: str
    progress: float
    stage: str


class ScreeningResult(BaseModel):
    """One paper's result, as the pipeline builds it, the store keeps it and every reader
    (the poll, the results page, exports, PRISMA, agreement, provenance) reads it back with
    ``item.result_as(ScreeningResult)``. ``score_1`` .. ``score_N`` (one per repetition) and
    any field added later pass through unchanged. Scores are the model's 1-5 integers; the
    means are floats."""

    model_config = ConfigDict(extra="allow")
    id: str
    status: str | None = None
    final_score: float | None = None
    mean_score: float | None = None
    max_score: int | None = None
    score_spread: int | None = None
    scores: list[int] | None = None
    score_distribution: list[float] | None = Field(None, description="P(score = 1..5)")
    score_sd: float | None = None
    scoring: str | None = Field(None, description="samples or distribution")
    reasoning: str | None = None
    verdict: str | None = None
    decisive_criteria: list[Any] | None = None
    criteria_assessment: list[CriterionVerdict] | None = None
    reused_from: str | None = Field(None, description="the job whose result this reuses")
    exclusion_reason: str | None = Field(
        None, description="below the threshold: the criterion that excludes it, or 'unclear'"
    )
    flags: list[str] | None = None
    cluster_id: int | None = None
    cluster_ids: list[int] | None = None
    error: str | None = None
    error_category: str | None = None

    @classmethod
    def of(cls, item: ItemRow) -> ScreeningResult:
        """The item's result so far (only its id while it has none; the item's id where
        the stored result does not carry one)."""
        return cls.model_validate({"id": item.item_id, **(item.result or {})})

    def stored(self) -> dict[str, Any]:
        """The stored form: the fields this result was given, JSON-ready."""
        return self.model_dump(mode="json", exclude_unset=True)

    def updated(self, **fields: Any) -> ScreeningResult:
        """A copy with ``fields`` set (validated)."""
        return ScreeningResult.model_validate({**self.stored(), **fields})

    @property
    def failed(self) -> bool:
        return self.error is not None


class CriterionVerdict(BaseModel):
    criterion: str = Field(description="the criterion's name (else its id and text)")
    id: str
    type: str
    verdict: Literal["met", "not_met", "unclear"]
    quote: str | None = None
    quote_verified: bool = False

    @property
    def fails(self) -> bool:
        """An include criterion not met, or an exclude criterion met."""
        return (self.type == "include" and self.verdict == "not_met") or (
            self.type == "exclude" and self.verdict == "met"
        )


class ReasonCount(BaseModel):
    reason: str
    count: int


class PrismaCounts(BaseModel):
    """The screening part of the PRISMA 2020 flow; records_screened = included + excluded +
    failed + pending."""

    job_id: str
    threshold: float
    records_screened: int
    included: int
    excluded: int
    failed: int
    pending: int
    duplicates_flagged: int
    excluded_by_reason: list[ReasonCount]


class ReasonCluster(BaseModel):
    model_config = ConfigDict(extra="allow")
    cluster_id: int
    label: str
    description: str | None = None
    count: int | None = None

    @classmethod
    def of(cls, row: ScreeningJob) -> list[ReasonCluster]:
        """A screening job's stored themes (none until its clustering stage has run)."""
        return [cls.model_validate(c) for c in row.clusters or []]


class ScreeningJobResponse(BaseModel):
    job_id: str
    status: str
    progress: float
    stage: str
    results: list[ScreeningResult] | None = None
    clusters: list[ReasonCluster] | None = None
    error: str | None = None
    error_category: str | None = None
    error_retryable: bool | None = None
    duration_ms: int | None = None
    estimated_cost_usd: float | None = None
    stage_timings: dict[str, int] | None = None
    model: str | None = None
    model_version: str | None = None
    warnings: list[str] | None = None  # e.g. a retired model replaced by its successor
    failed_count: int | None = None  # papers that ended with an item error
    errors: list[str] | None = None  # one line per failed paper
    papers_count: int | None = None
    project_id: int | None = None
    usage: dict[str, Any] | None = None
    # "batch": true jobs: the provider's batches (id, stage, status, request counts)
    provider_batches: list[dict[str, Any]] | None = None
    # an update of another job (POST .../update): what was added, duplicated and reused
    update_of: str | None = None
    added_count: int | None = None
    duplicate_count: int | None = None
    reused_count: int | None = None
    created_at: str | None = None
    completed_at: str | None = None


class ScreeningJobSummary(BaseModel):
    job_id: str
    status: str
    progress: float
    stage: str
    papers_count: int
    model: str
    project_id: int | None = None
    duration_ms: int | None = None
    estimated_cost_usd: float | None = None
    created_at: str
    completed_at: str | None = None


class ResultsPage(BaseModel):
    job_id: str
    offset: int
    limit: int
    total: int
    results: list[ScreeningResult]


# ---- model output schemas --------------------------------------------------------------
class LabelOutput(BaseModel):
    score: Literal[1, 2, 3, 4, 5]


class Theme(BaseModel):
    label: str
    description: str


class ThemesOutput(BaseModel):
    themes: list[Theme]
