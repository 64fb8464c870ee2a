"""Criteria AI request/response schemas (the HTTP contract) and the models' output schemas."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from crystallise.common.types import ModelName, NonEmptyStr
from crystallise.screening.criteria import CriterionInput

CriterionType = Literal["include", "exclude"]
PicosElement = Literal["population", "intervention", "comparison", "outcome", "study_design"]
Category = Literal[
    "Population",
    "Intervention",
    "Comparison",
    "Outcome",
    "Study Design",
    "Publication Type",
    "Setting",
    "Time Frame",
    "Language",
    "Other",
]


# ---- shared types (api-reference "Shared Types") ---------------------------------
class CriterionResponse(BaseModel):
    category: str
    text: str
    description: str | None = None
    criterion_type: CriterionType
    confidence: float | None = Field(None, ge=0, le=1)
    rationale: str | None = None
    title_abstract_assessable: bool | None = None


class DuplicateGroup(BaseModel):
    group_type: str
    category: str
    criterion_ids: list[int]
    recommended_primary_id: int
    merge_rationale: str
    ai_confidence: float = Field(ge=0, le=1)


class ConsolidationProposal(BaseModel):
    category: str
    criterion_ids: list[int]
    proposed_merged_criterion: str
    proposed_description: str
    proposed_type: CriterionType
    merge_rationale: str
    ai_confidence: float = Field(ge=0, le=1)


# ---- requests ----------------------------------------------------------------------
class _Request(BaseModel):
    model_config = ConfigDict(extra="ignore")
    model: ModelName | None = None
    mock: bool = False


class AnalyzeQuestionRequest(_Request):
    research_question: NonEmptyStr


class GenerateCriteriaRequest(_Request):
    project_description: NonEmptyStr
    research_questions: list[NonEmptyStr] = Field(default_factory=list)
    additional_notes: str | None = None
    existing_criteria: list[CriterionInput] = Field(default_factory=list)
    criterion_type: CriterionType = "exclude"


class PicosRequest(_Request):
    project_description: NonEmptyStr
    research_questions: list[NonEmptyStr] = Field(default_factory=list)


class RefineContextRequest(_Request):
    description: NonEmptyStr
    research_questions: list[NonEmptyStr] = Field(default_factory=list)


class RefineCriteriaRequest(_Request):
    current_criteria: list[CriterionInput]
    conflicts: list[dict[str, Any]] = Field(default_factory=list)
    project_description: str | None = None


class ConsolidateRequest(_Request):
    criteria: list[CriterionInput] = Field(min_length=1)
    project_description: str | None = None
    research_questions: list[str] = Field(default_factory=list)


# ---- responses ---------------------------------------------------------------------
class AnalyzeQuestionResponse(BaseModel):
    status: Literal["ready", "could_improve"]
    missing_elements: list[str]
    suggestion: str


class CriteriaListResponse(BaseModel):
    criteria: list[CriterionResponse]


class PicosResponse(BaseModel):
    elements: dict[str, str | None]
    gap_flags: list[str]
    contraindications: list[dict[str, Any]]


class RefineContextResponse(BaseModel):
    refined_description: str
    refined_research_questions: list[str]
    explanation: str


class ConsolidateResponse(BaseModel):
    duplicate_groups: list[DuplicateGroup]
    consolidation_proposals: list[ConsolidationProposal]
    warnings: list[str]


# ---- model output schemas (strict structured output) -----------------------------
class ElementJudgement(BaseModel):
    element: PicosElement
    source_span: str | None
    status: Literal["present", "vague", "absent"]
    note: str


class QuestionAnalysisOutput(BaseModel):
    elements: list[ElementJudgement]
    suggestion: str


class GeneratedCriterion(BaseModel):
    category: Category
    text: str
    description: str
    rationale: str
    title_abstract_assessable: bool
    confidence: float


class GenerationOutput(BaseModel):
    criteria: list[GeneratedCriterion]


class PicosElements(BaseModel):
    population: str | None
    intervention: str | None
    comparison: str | None
    outcome: str | None
    study_design: str | None


class Contraindication(BaseModel):
    elements: list[PicosElement]
    description: str


class PicosOutput(BaseModel):
    elements: PicosElements
    gap_flags: list[str]
    contraindications: list[Contraindication]


class ContextRefinementOutput(BaseModel):
    refined_description: str
    refined_research_questions: list[str]
    explanation: str


class RefinedCriterion(BaseModel):
    conflict_ids: list[str]
    action: Literal["add", "modify"]
    category: Category
    text: str
    description: str
    criterion_type: CriterionType
    rationale: str
    confidence: float
    title_abstract_assessable: bool


class RefinementOutput(BaseModel):
    criteria: list[RefinedCriterion]


class DuplicateGroupOutput(BaseModel):
    group_type: Literal["exact", "semantic"]
    category: str
    criterion_ids: list[int]
    recommended_primary_id: int
    merge_rationale: str
    ai_confidence: float


class ProposalOutput(BaseModel):
    category: str
    criterion_ids: list[int]
    proposed_merged_criterion: str
    proposed_description: str
    proposed_type: CriterionType
    merge_rationale: str
    ai_confidence: float


class ConsolidationOutput(BaseModel):
    duplicate_groups: list[DuplicateGroupOutput]
    consolidation_proposals: list[ProposalOutput]
