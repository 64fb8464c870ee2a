"""Mock-mode answers: the api-reference examples, computed from the input where it shows so."""

from __future__ import annotations

from crystallise.criteria.schemas import (
    AnalyzeQuestionResponse,
    ConsolidateRequest,
    ConsolidateResponse,
    CriteriaListResponse,
    CriterionResponse,
    GenerateCriteriaRequest,
    PicosResponse,
    RefineContextRequest,
    RefineContextResponse,
    RefineCriteriaRequest,
)


def analyze_question() -> AnalyzeQuestionResponse:
    return AnalyzeQuestionResponse(
        status="could_improve",
        missing_elements=["Population is not specified", "Outcome measures are vague"],
        suggestion=(
            "Mock mode: specify the population, intervention, and primary outcome to make the "
            "question searchable. Run without mock for real analysis."
        ),
    )


def generate(request: GenerateCriteriaRequest) -> CriteriaListResponse:
    if request.criterion_type == "include":
        return CriteriaListResponse(
            criteria=[
                CriterionResponse(
                    category="Study Design",
                    text="Randomised controlled trials",
                    criterion_type="include",
                    description="Mock mode: parallel-group or cluster randomised trials.",
                    title_abstract_assessable=True,
                ),
                CriterionResponse(
                    category="Population",
                    text="Participants matching the review population",
                    criterion_type="include",
                    description="Mock mode: the population named in the project description.",
                    title_abstract_assessable=True,
                ),
            ]
        )
    return CriteriaListResponse(
        criteria=[
            CriterionResponse(
                category="Study Design",
                text="Review articles, systematic reviews, meta-analyses",
                criterion_type="exclude",
                description="Mock mode: secondary research that reports no new primary data.",
            ),
            CriterionResponse(
                category="Publication Type",
                text="Conference abstracts without full publication",
                criterion_type="exclude",
                description="Mock mode: abstracts too short to assess eligibility reliably.",
            ),
        ]
    )


def picos() -> PicosResponse:
    return PicosResponse(
        elements={
            "population": "Adults with the condition described in the project",
            "intervention": "The primary intervention or exposure under review",
            "comparison": "Standard of care, placebo, or no intervention",
            "outcome": "Primary clinical outcomes, efficacy, and safety measures",
            "study_design": "Study designs relevant to the research question",
        },
        gap_flags=[
            "Mock mode: PICOS elements are placeholders — run without mock for real extraction"
        ],
        contraindications=[],
    )


def refine_context(request: RefineContextRequest) -> RefineContextResponse:
    return RefineContextResponse(
        refined_description=(
            f"{request.description}\n\n"
            "[Refined for clarity and specificity in systematic review screening.]"
        ),
        refined_research_questions=[
            f"{q} [refined for precision]" for q in request.research_questions
        ],
        explanation=(
            "Mock mode: minor refinements applied as placeholders. "
            "Run without mock for real AI refinement."
        ),
    )


def refine(request: RefineCriteriaRequest) -> CriteriaListResponse:
    n = len(request.conflicts)
    return CriteriaListResponse(
        criteria=[
            CriterionResponse(
                category="Study Design",
                text="Exclude retrospective observational studies without a control arm",
                criterion_type="exclude",
                confidence=0.72,
                rationale=f"Derived from {n} reviewer conflict(s) on study design.",
            ),
            CriterionResponse(
                category="Outcome Reporting",
                text="Exclude studies that do not report the primary outcome quantitatively",
                criterion_type="exclude",
                confidence=0.65,
                rationale=f"Pattern across {n} conflict(s) flagged insufficient outcome data.",
            ),
        ]
    )


def consolidate(_: ConsolidateRequest) -> ConsolidateResponse:
    return ConsolidateResponse(
        duplicate_groups=[],
        consolidation_proposals=[],
        warnings=["Mock mode: no consolidation performed"],
    )
