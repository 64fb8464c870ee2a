"""AutoIndexer request/response schemas (shared types of the reference) and model outputs."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from crystallise.common.types import ModelName, NonEmptyStr, ProjectId

DataType = Literal["text", "number", "yes_no", "list_text", "list_number"]


class IndexerField(BaseModel):
    model_config = ConfigDict(extra="ignore")
    name: NonEmptyStr = Field(max_length=64)
    description: str = ""
    data_type_primary: DataType
    data_type_secondary: str = "NA"
    examples: list[str] = Field(default_factory=list)
    examples_mode: Literal["guide", "enum"] = "guide"
    depth: Literal["minimal", "full"] = "minimal"

    @model_validator(mode="after")
    def _enum_needs_examples(self) -> IndexerField:
        if self.examples_mode == "enum" and not self.examples:
            raise ValueError(f"field '{self.name}': examples_mode 'enum' needs examples")
        return self


class ProjectContext(BaseModel):
    model_config = ConfigDict(extra="ignore")
    description: str = ""
    research_questions: list[str] = Field(default_factory=list)


def _unique_field_names(fields: list[IndexerField]) -> list[IndexerField]:
    seen: set[str] = set()
    for field in fields:
        if field.name in seen:
            raise ValueError(f"duplicate field name '{field.name}'")
        seen.add(field.name)
    return fields


class IndexerRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")
    records: list[dict[str, Any]] = Field(min_length=1)
    fields: list[IndexerField] = Field(min_length=1)
    model: ModelName | None = None
    project_context: ProjectContext | None = None
    mode: Literal["test", "sample", "full"] = "full"
    max_workers: int = Field(4, ge=1, le=64, strict=True)
    batch_size: int = Field(50, ge=1, le=1000, strict=True)
    project_id: ProjectId | None = None
    mock: bool = False

    _check_fields = field_validator("fields")(_unique_field_names)

    @field_validator("records")
    @classmethod
    def _records_have_ids(cls, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        seen: set[str] = set()
        for i, record in enumerate(records):
            rid = record.get("ID")
            if rid is None or str(rid).strip() == "":
                raise ValueError(f"record {i} has no ID")
            key = str(rid).strip()
            if key in seen:
                raise ValueError(f"duplicate record ID '{key}'")
            seen.add(key)
        return records

    def selected_records(self) -> list[dict[str, Any]]:
        """``test`` = first 5, ``sample`` = first 20, ``full`` = all."""
        limit = {"test": 5, "sample": 20}.get(self.mode)
        return self.records[:limit] if limit else list(self.records)


class IndexedRecord(BaseModel):
    """One record's extraction: ``ID``, its ``indexing_status`` and, per extracted field
    (by its name), ``{value, confidence, evidence, evidence_verified, ...}``."""

    model_config = ConfigDict(extra="allow")
    ID: str | int | None = None
    indexing_status: str | None = None
    error: str | None = None
    error_category: str | None = None

    def extracted(self, name: str) -> Any:
        """The extraction of the field ``name`` (``{value, confidence, evidence, ...}``)."""
        if name in IndexedRecord.model_fields:  # a field named like a column (``error``)
            return getattr(self, name)
        return (self.model_extra or {}).get(name)


class IndexerRunResponse(BaseModel):
    results: list[IndexedRecord]
    errors: list[str]
    usage: dict[str, Any]
    model_version: str | None
    model: str | None = None  # the model that ran
    warnings: list[str] | None = None  # e.g. a retired model replaced by its successor


class IndexerJobCreated(BaseModel):
    job_id: str
    status: str
    progress: float


class IndexerJobResponse(BaseModel):
    job_id: str
    status: str
    progress: float
    stage: str = ""
    partial_results: list[IndexedRecord] = Field(default_factory=list)
    errors: list[str] = Field(default_factory=list)
    usage: dict[str, Any] | None = None
    error: str | None = None
    error_category: str | None = None
    error_retryable: bool | None = None
    duration_ms: int | None = None
    estimated_cost_usd: float | None = None
    model_version: str | None = None
    model: str | None = None
    warnings: list[str] | None = None
    created_at: str | None = None
    completed_at: str | None = None


class IndexerJobSummary(BaseModel):
    job_id: str
    status: str
    progress: float
    model: str
    record_count: int
    project_id: int | None = None
    duration_ms: int | None = None
    estimated_cost_usd: float | None = None
    created_at: str
    completed_at: str | None = None


class IndexerEstimateRequest(BaseModel):
    fields: list[IndexerField] = Field(min_length=1)
    record_count: int = Field(ge=1, le=10_000_000, strict=True)
    model: ModelName | None = None
    _check_fields = field_validator("fields")(_unique_field_names)


class IndexerEstimateResponse(BaseModel):
    estimated_input_tokens: int
    estimated_output_tokens: int
    estimated_cost_usd: float
    model: str | None = None  # the model priced (the successor of a retired one)
    warnings: list[str] | None = None
    confidence: str = "approximate"
    disclaimer: str


class ExtractionWarning(BaseModel):
    field: str
    risk_level: Literal["low", "medium", "high"] = "medium"
    reason: str
    suggested_fallback: str


class SuggestFieldsRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")
    project_context: ProjectContext | None = None
    pico: dict[str, Any] | None = None
    sample_records: list[dict[str, Any]] = Field(default_factory=list)
    existing_fields: list[str] = Field(default_factory=list)
    model: ModelName | None = None
    mock: bool = False


class SuggestFieldsResponse(BaseModel):
    fields: list[dict[str, Any]]
    warnings: list[ExtractionWarning]


class FieldSuggestion(BaseModel):
    action: Literal["add", "modify", "remove", "merge"]
    field: IndexerField
    rationale: str
    original_field_name: str | None = None
    target_field_name: str | None = None


class RefineFieldsRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")
    fields: list[IndexerField] = Field(min_length=1)
    project_context: ProjectContext | None = None
    sample_records: list[dict[str, Any]] = Field(default_factory=list)
    model: ModelName | None = None
    mock: bool = False
    _check_fields = field_validator("fields")(_unique_field_names)


class RefineFieldsResponse(BaseModel):
    suggestions: list[FieldSuggestion]
    warnings: list[str] = Field(default_factory=list)


class TagGroup(BaseModel):
    name: str
    values: list[str]
    rationale: str | None = None


class GroupTagsRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")
    field_name: NonEmptyStr
    values: list[str] = Field(min_length=1)
    project_context: ProjectContext | None = None
    num_groups_hint: int | None = Field(None, ge=1, le=100)
    model: ModelName | None = None
    mock: bool = False


class GroupTagsResponse(BaseModel):
    groups: list[TagGroup]
    usage: dict[str, Any]


# ---- model output schemas -----------------------------------------------------------------
class SuggestedFieldOutput(BaseModel):
    name: str
    description: str
    data_type_primary: DataType
    examples: list[str]


class WarningOutput(BaseModel):
    field: str
    risk_level: Literal["low", "medium", "high"]
    reason: str
    suggested_fallback: str


class SuggestFieldsOutput(BaseModel):
    fields: list[SuggestedFieldOutput]
    warnings: list[WarningOutput]


class FieldSuggestionOutput(BaseModel):
    action: Literal["add", "modify", "remove", "merge"]
    original_field_name: str | None
    target_field_name: str | None
    field: SuggestedFieldOutput
    rationale: str


class RefineFieldsOutput(BaseModel):
    suggestions: list[FieldSuggestionOutput]


class TagGroupOutput(BaseModel):
    name: str
    rationale: str
    values: list[str]


class GroupTagsOutput(BaseModel):
    groups: list[TagGroupOutput]
