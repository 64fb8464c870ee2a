"""Criteria AI: one structured-output call per endpoint, plus server-side guards (§7)."""

from __future__ import annotations

import json
import re
from typing import Any

from crystallise.criteria import mock
from crystallise.criteria import schemas as s
from crystallise.llm.ask import HelperContext, ask_structured
from crystallise.prompts import criteria as prompts
from crystallise.screening.criteria import CriterionInput

MIN_CONFIDENCE = 0.75
MAX_MERGED_WORDS = 10
_ELEMENT_LABEL = {
    "population": "Population",
    "intervention": "Intervention",
    "comparison": "Comparison",
    "outcome": "Outcome",
    "study_design": "Study design",
}
# PICOS-ready needs P, I and O stated; comparison and design are often legitimately absent.
_CORE_ELEMENTS = ("population", "intervention", "outcome")


def _bullets(items: list[str]) -> str:
    return "\n".join(f"- {item}" for item in items) or "(none)"


def _criteria_lines(criteria: list[CriterionInput]) -> str:
    lines = []
    for i, c in enumerate(criteria, 1):
        cid = c.id if c.id is not None else i
        ctype = c.criterion_type or c.type or ""
        label = c.statement or c.heading
        lines.append(f"[{cid}] ({c.category or 'Other'}; {ctype}) {label}".strip())
    return "\n".join(lines) or "(none)"


def _norm(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", " ", text.lower()).strip()


# ---- endpoints -----------------------------------------------------------------------
async def analyze_research_question(
    ctx: HelperContext, req: s.AnalyzeQuestionRequest
) -> s.AnalyzeQuestionResponse:
    """Per-element present/vague/absent from the model; ``status`` derived here, not by it."""
    if req.mock:
        return mock.analyze_question()
    out, _ = await ask_structured(
        ctx,
        "criteria.analyze_question",
        prompts.QUESTION_ANALYSIS,
        s.QuestionAnalysisOutput,
        req.model,
        research_question=req.research_question,
    )
    judged = {e.element: e for e in out.elements}
    missing: list[str] = []
    for element, label in _ELEMENT_LABEL.items():
        judgement = judged.get(element)  # type: ignore[call-overload]
        status = judgement.status if judgement else "absent"
        core = element in _CORE_ELEMENTS
        if status == "absent" and core:
            missing.append(f"{label} is not specified")
        elif status == "vague":
            missing.append(
                f"{label} is vague"
                + (f": {judgement.note}" if judgement and judgement.note else "")
            )
    ready = not any(
        (judged.get(e).status if judged.get(e) else "absent") != "present"  # type: ignore[call-overload,union-attr]
        for e in _CORE_ELEMENTS
    )
    return s.AnalyzeQuestionResponse(
        status="ready" if ready else "could_improve",
        missing_elements=missing,
        suggestion=out.suggestion,
    )


async def generate_criteria(
    ctx: HelperContext, req: s.GenerateCriteriaRequest
) -> s.CriteriaListResponse:
    """Atomic criteria of the requested type; duplicates of existing ones are dropped."""
    if req.mock:
        return mock.generate(req)
    out, _ = await ask_structured(
        ctx,
        "criteria",
        prompts.GENERATION,
        s.GenerationOutput,
        req.model,
        criterion_type=req.criterion_type,
        project_description=req.project_description,
        research_questions=_bullets(req.research_questions),
        additional_notes=req.additional_notes or "(none)",
        existing_criteria=_criteria_lines(req.existing_criteria),
    )
    seen = {_norm(c.statement or c.heading) for c in req.existing_criteria}
    criteria: list[s.CriterionResponse] = []
    for c in out.criteria:
        key = _norm(c.text)
        if not key or key in seen:
            continue
        seen.add(key)
        criteria.append(
            s.CriterionResponse(
                category=c.category,
                text=c.text,
                description=c.description,
                criterion_type=req.criterion_type,
                confidence=min(max(c.confidence, 0.0), 1.0),
                rationale=c.rationale,
                title_abstract_assessable=c.title_abstract_assessable,
            )
        )
    return s.CriteriaListResponse(criteria=criteria)


async def extract_pico(ctx: HelperContext, req: s.PicosRequest) -> s.PicosResponse:
    if req.mock:
        return mock.picos()
    out, _ = await ask_structured(
        ctx,
        "criteria",
        prompts.PICOS_EXTRACTION,
        s.PicosOutput,
        req.model,
        project_description=req.project_description,
        research_questions=_bullets(req.research_questions),
    )
    return s.PicosResponse(
        elements=out.elements.model_dump(),
        gap_flags=out.gap_flags,
        contraindications=[c.model_dump() for c in out.contraindications],
    )


async def refine_context(
    ctx: HelperContext, req: s.RefineContextRequest
) -> s.RefineContextResponse:
    if req.mock:
        return mock.refine_context(req)
    out, _ = await ask_structured(
        ctx,
        "criteria",
        prompts.CONTEXT_REFINEMENT,
        s.ContextRefinementOutput,
        req.model,
        description=req.description,
        research_questions=_bullets(req.research_questions),
    )
    return s.RefineContextResponse(**out.model_dump())


def _conflict_lines(conflicts: list[dict[str, Any]]) -> str:
    lines = []
    for i, conflict in enumerate(conflicts, 1):
        fields = json.dumps(conflict, ensure_ascii=False, default=str)
        lines.append(f"C{i}: {fields}")
    return "\n".join(lines) or "(none)"


async def refine_criteria(
    ctx: HelperContext, req: s.RefineCriteriaRequest
) -> s.CriteriaListResponse:
    """Minimal edits tied to conflict ids; proposals citing no real conflict are dropped."""
    if req.mock:
        return mock.refine(req)
    out, _ = await ask_structured(
        ctx,
        "criteria",
        prompts.CONFLICT_REFINEMENT,
        s.RefinementOutput,
        req.model,
        project_description=req.project_description or "(not given)",
        current_criteria=_criteria_lines(req.current_criteria),
        conflicts=_conflict_lines(req.conflicts),
    )
    valid_ids = {f"C{i}" for i in range(1, len(req.conflicts) + 1)}
    criteria = []
    for c in out.criteria:
        cited = [cid for cid in c.conflict_ids if cid in valid_ids]
        if valid_ids and not cited:
            continue
        rationale = c.rationale + (f" (conflicts: {', '.join(cited)})" if cited else "")
        criteria.append(
            s.CriterionResponse(
                category=c.category,
                text=c.text,
                description=c.description,
                criterion_type=c.criterion_type,
                confidence=min(max(c.confidence, 0.0), 1.0),
                rationale=rationale,
                title_abstract_assessable=c.title_abstract_assessable,
            )
        )
    return s.CriteriaListResponse(criteria=criteria)


def _criterion_ids(criteria: list[CriterionInput]) -> list[int]:
    ids = []
    for i, c in enumerate(criteria, 1):
        try:
            ids.append(int(c.id if c.id is not None else i))
        except ValueError:
            ids.append(i)
    return ids


async def consolidate_criteria(
    ctx: HelperContext, req: s.ConsolidateRequest
) -> s.ConsolidateResponse:
    if req.mock:
        return mock.consolidate(req)
    out, _ = await ask_structured(
        ctx,
        "deduplication",
        prompts.CONSOLIDATION,
        s.ConsolidationOutput,
        req.model,
        project_description=req.project_description or "(not given)",
        research_questions=_bullets(req.research_questions),
        criteria=_criteria_lines(req.criteria),
    )
    return apply_consolidation_guards(out, set(_criterion_ids(req.criteria)))


def apply_consolidation_guards(
    out: s.ConsolidationOutput, known_ids: set[int]
) -> s.ConsolidateResponse:
    """Drop low-confidence groups/proposals, over-long labels and unknown ids, with warnings."""
    warnings: list[str] = []
    groups = [g for g in (_guard_group(g, known_ids, warnings) for g in out.duplicate_groups) if g]
    proposals = [
        p
        for p in (_guard_proposal(p, known_ids, warnings) for p in out.consolidation_proposals)
        if p
    ]
    return s.ConsolidateResponse(
        duplicate_groups=groups, consolidation_proposals=proposals, warnings=warnings
    )


def _guard_group(g: Any, known_ids: set[int], warnings: list[str]) -> s.DuplicateGroup | None:
    unknown = [i for i in g.criterion_ids if i not in known_ids]
    ids = list(dict.fromkeys(i for i in g.criterion_ids if i in known_ids))
    if unknown:
        warnings.append(f"Duplicate group ignored unknown criterion ids {unknown}.")
    if len(ids) < 2:
        warnings.append(f"Duplicate group {g.criterion_ids} dropped: fewer than 2 known criteria.")
        return None
    if g.ai_confidence < MIN_CONFIDENCE:
        warnings.append(
            f"Duplicate group {ids} dropped: ai_confidence {g.ai_confidence:.2f} < {MIN_CONFIDENCE}."
        )
        return None
    primary = g.recommended_primary_id if g.recommended_primary_id in ids else ids[0]
    return s.DuplicateGroup(
        group_type=g.group_type,
        category=g.category,
        criterion_ids=ids,
        recommended_primary_id=primary,
        merge_rationale=g.merge_rationale,
        ai_confidence=min(g.ai_confidence, 1.0),
    )


def _guard_proposal(
    p: Any, known_ids: set[int], warnings: list[str]
) -> s.ConsolidationProposal | None:
    unknown = [i for i in p.criterion_ids if i not in known_ids]
    ids = list(dict.fromkeys(i for i in p.criterion_ids if i in known_ids))
    label = p.proposed_merged_criterion
    if unknown:
        warnings.append(f"Proposal '{label}' ignored unknown ids {unknown}.")
    words = len(label.split())
    if len(ids) < 2:
        warnings.append(f"Proposal '{label}' dropped: fewer than 2 known criteria.")
    elif words > MAX_MERGED_WORDS:
        warnings.append(f"Proposal '{label}' dropped: {words} words > {MAX_MERGED_WORDS}.")
    elif p.ai_confidence < MIN_CONFIDENCE:
        warnings.append(
            f"Proposal '{label}' dropped: ai_confidence {p.ai_confidence:.2f} < {MIN_CONFIDENCE}."
        )
    else:
        values = {
            **p.model_dump(),
            "criterion_ids": ids,
            "ai_confidence": min(p.ai_confidence, 1.0),
        }
        return s.ConsolidationProposal(**values)
    return None
