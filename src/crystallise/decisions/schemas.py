"""HTTP shapes of the decision endpoints (calibrate, prioritize, stopping)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, field_validator, model_validator

from crystallise.common.types import Threshold
from crystallise.decisions.calibrate import DEFAULT_RULES, CalibrationFigures, valid_rule
from crystallise.decisions.stopping import HeuristicStop, StoppingResult

RecordId = Annotated[str, Field(min_length=1, max_length=512)]
Label = Annotated[int, Field(ge=0, le=1, strict=True)]  # 1 include, 0 exclude
Score = Annotated[float, Field(ge=0, le=100, allow_inf_nan=False)]
Proportion = Annotated[float, Field(gt=0, lt=1, allow_inf_nan=False)]
# A recall target below 1% is no target (and 1e-300 overflows the test's urn size).
Recall = Annotated[float, Field(ge=0.01, lt=1, allow_inf_nan=False)]
MAX_RULES = 32  # mean, max, min and k_of_n:K for K up to the 20 repetitions


def _unique_ids(ids: list[str], field: str) -> None:
    seen: set[str] = set()
    dupes = [i for i in ids if i in seen or seen.add(i)]  # type: ignore[func-returns-value]
    if dupes:
        raise ValueError(f"{field}: duplicate ids {sorted(set(dupes))[:10]}")


def _null_means_default(data: Any, fields: tuple[str, ...]) -> Any:
    """``"field": null`` asks for the default, as leaving the field out does."""
    if isinstance(data, dict):
        return {k: v for k, v in data.items() if not (k in fields and v is None)}
    return data


class Targets(BaseModel):
    @model_validator(mode="before")
    @classmethod
    def _defaults(cls, data: Any) -> Any:
        return _null_means_default(data, ("target_recall", "confidence", "rules", "mock"))

    target_recall: Recall = 0.95
    confidence: Proportion = 0.95
    rules: list[str] = Field(
        default_factory=lambda: list(DEFAULT_RULES), min_length=1, max_length=MAX_RULES
    )
    mock: bool = False

    @field_validator("rules")
    @classmethod
    def _rules(cls, rules: list[str]) -> list[str]:
        bad = [r for r in rules if not valid_rule(r)]
        if bad:
            raise ValueError(f"unknown rules {bad}: use mean, max, min or k_of_n:K (K >= 1)")
        if len(set(rules)) != len(rules):
            raise ValueError("rules: each rule once")
        return rules


class CalibrateRecord(BaseModel):
    id: RecordId
    scores: list[Score] | None = Field(None, min_length=1, max_length=100)
    final_score: Score | None = None
    label: Label | None = None

    @model_validator(mode="after")
    def _has_score(self) -> CalibrateRecord:
        if self.scores is None and self.final_score is None:
            raise ValueError(f"record {self.id}: give scores or final_score")
        return self


class CalibrateRequest(Targets):
    records: list[CalibrateRecord] = Field(min_length=1)

    @model_validator(mode="after")
    def _ids(self) -> CalibrateRequest:
        _unique_ids([r.id for r in self.records], "records")
        return self


class JobCalibrateRequest(Targets):
    labels: dict[RecordId, Label] = Field(min_length=1)


class CalibrateResponse(CalibrationFigures):
    target_recall: float
    confidence: float
    rules_considered: list[str]
    report: str


class PrioritizeRecord(BaseModel):
    id: RecordId
    title: str = ""
    abstract: str = ""
    label: Label | None = None
    score: Score | None = None


class PrioritizeRequest(BaseModel):
    records: list[PrioritizeRecord] = Field(min_length=1)
    mock: bool = False

    @model_validator(mode="after")
    def _ids(self) -> PrioritizeRequest:
        _unique_ids([r.id for r in self.records], "records")
        return self


class RankedRecord(BaseModel):
    id: str
    probability: float


class PrioritizeResponse(BaseModel):
    ranking: list[RankedRecord]
    model: str
    trained_on: dict[str, int]


class ScreenedRecord(BaseModel):
    id: RecordId
    label: Label


class StoppingRequest(BaseModel):
    @model_validator(mode="before")
    @classmethod
    def _defaults(cls, data: Any) -> Any:
        return _null_means_default(data, ("target_recall", "confidence", "mock"))

    screened: list[ScreenedRecord] = Field(min_length=1)
    total_records: int = Field(ge=1, le=10_000_000, strict=True)
    target_recall: Recall = 0.95
    confidence: Proportion = 0.95
    mock: bool = False

    @model_validator(mode="after")
    def _consistent(self) -> StoppingRequest:
        _unique_ids([r.id for r in self.screened], "screened")
        if len(self.screened) > self.total_records:
            raise ValueError(
                f"total_records ({self.total_records}) is less than the "
                f"{len(self.screened)} records screened"
            )
        return self


class HeuristicStopOut(HeuristicStop):
    method: str


class StoppingResponse(StoppingResult):
    assumptions: str
    method: str
    heuristic: HeuristicStopOut  # a second answer that saves more: evidence by simulation only


NextCount = Annotated[int, Field(ge=1, le=1000, strict=True)]


class SessionCreateRequest(BaseModel):
    """A prioritised-screening session: the records once (labels optional), then one label
    at a time. ``next_count``: how many records to suggest in each answer."""

    @model_validator(mode="before")
    @classmethod
    def _defaults(cls, data: Any) -> Any:
        return _null_means_default(data, ("target_recall", "confidence", "next_count"))

    records: list[PrioritizeRecord] = Field(min_length=2)
    target_recall: Recall = 0.95
    confidence: Proportion = 0.95
    next_count: NextCount = 10

    @model_validator(mode="after")
    def _ids(self) -> SessionCreateRequest:
        _unique_ids([r.id for r in self.records], "records")
        return self


class SessionLabelsRequest(BaseModel):
    labels: list[ScreenedRecord] = Field(min_length=1)
    next_count: NextCount | None = None

    @model_validator(mode="after")
    def _ids(self) -> SessionLabelsRequest:
        _unique_ids([r.id for r in self.labels], "labels")
        return self


class SessionResponse(BaseModel):
    session_id: str
    expires_at: str
    total_records: int
    screened_count: int
    includes_found: int
    next: list[RankedRecord]  # the records to screen next, best first
    model: str
    stopping: StoppingResponse
    recall_estimate: float | None
    # records not yet screened that were sent without an abstract: once a stopping rule says
    # stop, `next` lists them first; stop when this is 0 (the ranking cannot judge a title)
    unscreened_without_abstract: int


ReviewerName = Annotated[str, Field(min_length=1, max_length=100)]


class AgreementRequest(BaseModel):
    reviewers: dict[ReviewerName, dict[RecordId, Label]] = Field(min_length=1, max_length=20)
    threshold: Threshold | None = None

    @model_validator(mode="after")
    def _labels(self) -> AgreementRequest:
        empty = [name for name, labels in self.reviewers.items() if not labels]
        if empty:
            raise ValueError(f"reviewers: {empty[:5]} decided no paper")
        if "AI" in self.reviewers:
            raise ValueError("reviewers: 'AI' names the model's decisions; call the reviewer else")
        return self


class PairAgreementOut(BaseModel):
    raters: list[str]
    n: int
    percent_agreement: float | None
    kappa: float | None = Field(description="Cohen's kappa; null when both used one label only")
    kappa_ci: list[float] | None
    ac1: float | None = Field(description="Gwet's AC1")


class AgainstConsensus(BaseModel):
    papers: int
    conflicts: int
    conflict_ids: list[str]
    sensitivity: float | None
    sensitivity_ci: list[float] | None
    specificity: float | None
    specificity_ci: list[float] | None


class Disagreement(BaseModel):
    id: str
    ai: Label
    consensus: Label
    risk: Literal["missed_include", "extra_include"]
    final_score: float | None = None
    verdict: str | None = None
    exclusion_reason: str | None = Field(
        None, description="the AI excluded it: the criterion it failed, or 'unclear'"
    )
    quote: str | None = Field(None, description="the words the AI cited for that criterion")
    quote_verified: bool | None = None
    decisive_criteria: list[str] = Field(default_factory=list)
    reasoning: str | None = None


class CriterionDisagreements(BaseModel):
    criterion: str
    disagreements: int = Field(
        description="disagreements this criterion's verdict explains: a missed include the AI "
        "failed on it, or an extra include the AI judged it to pass"
    )
    missed_includes: int = Field(0, description="of them: the AI excluded on this criterion")
    extra_includes: int = Field(0, description="of them: the AI let the paper pass it")
    unclear: int = Field(0, description="disagreements where the AI's verdict on it was unclear")


class AgreementResponse(BaseModel):
    job_id: str
    threshold: float
    pairs: list[PairAgreementOut]
    ai_vs_consensus: AgainstConsensus
    disagreements: list[Disagreement]
    criteria: list[CriterionDisagreements]
    report: str
