"""Criteria AI endpoints: validate, call one service function (or its mock), respond."""

from __future__ import annotations

from fastapi import APIRouter

from crystallise.api.deps import OpenAIKeyDep, ServicesDep
from crystallise.criteria import schemas as s
from crystallise.criteria import service
from crystallise.llm.ask import HelperContext

router = APIRouter(prefix="/criteria", tags=["criteria"])
_OPTS = {"response_model_exclude_none": True}


def _ctx(services: ServicesDep, key: str | None) -> HelperContext:
    return HelperContext(services.llm, services.configs, key)


@router.post("/analyze-question", response_model=s.AnalyzeQuestionResponse, **_OPTS)  # type: ignore[arg-type]
async def analyze_question(
    body: s.AnalyzeQuestionRequest, services: ServicesDep, key: OpenAIKeyDep
) -> s.AnalyzeQuestionResponse:
    return await service.analyze_research_question(_ctx(services, key), body)


@router.post("/generate", response_model=s.CriteriaListResponse, **_OPTS)  # type: ignore[arg-type]
async def generate(
    body: s.GenerateCriteriaRequest, services: ServicesDep, key: OpenAIKeyDep
) -> s.CriteriaListResponse:
    return await service.generate_criteria(_ctx(services, key), body)


@router.post("/picos", response_model=s.PicosResponse)
async def picos(body: s.PicosRequest, services: ServicesDep, key: OpenAIKeyDep) -> s.PicosResponse:
    return await service.extract_pico(_ctx(services, key), body)


@router.post("/refine-context", response_model=s.RefineContextResponse)
async def refine_context(
    body: s.RefineContextRequest, services: ServicesDep, key: OpenAIKeyDep
) -> s.RefineContextResponse:
    return await service.refine_context(_ctx(services, key), body)


@router.post("/refine", response_model=s.CriteriaListResponse, **_OPTS)  # type: ignore[arg-type]
async def refine(
    body: s.RefineCriteriaRequest, services: ServicesDep, key: OpenAIKeyDep
) -> s.CriteriaListResponse:
    return await service.refine_criteria(_ctx(services, key), body)


@router.post("/consolidate", response_model=s.ConsolidateResponse)
async def consolidate(
    body: s.ConsolidateRequest, services: ServicesDep, key: OpenAIKeyDep
) -> s.ConsolidateResponse:
    return await service.consolidate_criteria(_ctx(services, key), body)
