"""``crystallise criteria check "question"``: is a research question ready for criteria (PICOS)?"""

from __future__ import annotations

import argparse
import asyncio

import httpx
from rich.console import Console

from crystallise.config.settings import Settings
from crystallise.criteria import mock, service
from crystallise.criteria.schemas import AnalyzeQuestionRequest, AnalyzeQuestionResponse
from crystallise.errors import BadInput, Unavailable
from crystallise.llm.ask import HelperContext
from crystallise.services import Services


async def _check_here(settings: Settings, body: AnalyzeQuestionRequest) -> AnalyzeQuestionResponse:
    if body.mock:
        return mock.analyze_question()
    services = Services.build(settings.model_copy(update={"job_queue": "inprocess"}))
    try:
        ctx = HelperContext(services.llm, services.configs, None)
        return await service.analyze_research_question(ctx, body)
    finally:
        await services.aclose()


def _check_remote(
    url: str, api_key: str | None, body: AnalyzeQuestionRequest
) -> AnalyzeQuestionResponse:
    headers = {"X-API-Key": api_key} if api_key else {}
    try:
        answer = httpx.post(f"{url.rstrip('/')}/v1/criteria/analyze-question", headers=headers,
                            content=body.model_dump_json(), timeout=120,
                            )  # fmt: skip
    except httpx.HTTPError as exc:
        raise Unavailable(f"cannot reach {url}: {exc}") from None
    if answer.status_code >= 400:
        raise BadInput(f"the server answered {answer.status_code}: {answer.text[:300]}")
    return AnalyzeQuestionResponse.model_validate_json(answer.content)


def check_question(args: argparse.Namespace, settings: Settings) -> int:
    """Print whether the question is ready and what it is missing; exit 0 ready, 1 not."""
    body = AnalyzeQuestionRequest(research_question=args.question, mock=args.mock, model=args.model)
    if args.url:
        result = _check_remote(args.url, args.api_key, body)
    else:
        result = asyncio.run(_check_here(settings, body))
    console = Console()
    colour = "green" if result.status == "ready" else "yellow"
    console.print(f"[bold {colour}]{result.status}[/]")
    for element in result.missing_elements:
        console.print(f"  missing: {element}")
    if result.suggestion:
        console.print(f"suggestion: {result.suggestion}")
    return 0 if result.status == "ready" else 1
