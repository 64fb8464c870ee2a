"""Pre-flight token and cost estimate of a screening job, from the pipeline's own design."""

from __future__ import annotations

from functools import lru_cache

from pydantic import BaseModel

from crystallise.config.model_capabilities import ModelCapabilities, get_capabilities
from crystallise.llm.cost import estimate_cost
from crystallise.llm.errors import LLMError
from crystallise.llm.tokens import count_tokens
from crystallise.prompts import screening as prompts

AVG_PAPER_TOKENS = 350  # title + abstract of a typical biomedical record
TOKENS_PER_CRITERION = 30
LABEL_OUTPUT_TOKENS = 8
REASONING_MODEL_ALLOWANCE = 96  # hidden reasoning tokens at minimal effort, per answer
REASON_OUTPUT_TOKENS = 110
# per criterion, the reasoning answer's criteria_assessment entry: {"criterion": "I1",
# "verdict": "not_met", "quote": <up to 20 words>} is about 35 tokens of JSON
ASSESSMENT_TOKENS_PER_CRITERION = 35
ASSIGN_BATCH = 25
ASSIGN_TOKENS_PER_PAPER = 140
ASSIGN_OUTPUT_PER_PAPER = 14
# theme generation reads a sample of at most THEME_SAMPLE reasoning texts (with the chunk
# prompts and the merge call: ~160 tokens per text, measured on the fake with 60-90-word
# reasoning texts), so its cost stops growing with the job at 240 papers
THEME_SAMPLE = 240  # reasoning texts shown to the theme generator (screening/clustering.py)
THEME_TOKENS_PER_TEXT = 160
THEME_CHUNK_TOKENS = 8_000  # per theme-generation request (screening/clustering.py)
THEME_OUTPUT_PER_CHUNK = 320  # 8 candidate themes of ~40 tokens
THEME_MERGE_OUTPUT = 400  # the merged list
PAPER_WRAPPER_TOKENS = 16  # the <paper> tags and field names around title and abstract
BATCH_DISCOUNT = 0.5  # Batch API: half the price of every token (cached input included)
# OpenAI caches a prompt prefix of at least 1,024 tokens, in 128-token steps; every call of a
# job shares its system prompt (instructions + criteria), sent with one prompt_cache_key
CACHE_MIN_TOKENS = 1_024
CACHE_STEP_TOKENS = 128
DISCLAIMER = (
    "Estimate based on empirical averages. Actual cost may vary +-30% with abstract length, "
    "the model's hidden reasoning tokens and prompt-cache hits. Pricing is hardcoded in "
    "crystallise.llm.cost.DEFAULT_PRICING_PER_1M and may drift from OpenAI's public rates."
)


@lru_cache(maxsize=1)
def _static_tokens() -> tuple[int, int]:
    return (
        count_tokens(prompts.LABELLING.system or ""),
        count_tokens(prompts.REASONING.system or ""),
    )


def cached_prefix_tokens(prefix_tokens: int) -> int:
    """The part of a shared prefix the provider serves from its prompt cache."""
    if prefix_tokens < CACHE_MIN_TOKENS:
        return 0
    return prefix_tokens // CACHE_STEP_TOKENS * CACHE_STEP_TOKENS


def label_calls_per_paper(caps: ModelCapabilities, repetitions: int) -> int:
    """One call with ``n`` = repetitions where the model supports it, else one per repetition."""
    return 1 if caps.supports_n or repetitions == 1 else repetitions


class ScreeningEstimate(BaseModel):
    """What a screening job is expected to use and cost (the estimate endpoint's figures,
    and the submission's ceiling check)."""

    estimated_input_tokens: int
    estimated_cached_input_tokens: int
    estimated_output_tokens: int
    cost_per_paper_usd: float
    assumptions: list[str]
    estimated_cost_usd: float
    calls: int


def estimate_screening(
    *,
    model: str,
    clustering_model: str,
    papers_count: int,
    repetitions: int,
    criteria_count: int,
    paper_tokens_total: int | None = None,
    capabilities: ModelCapabilities | None = None,
    assignment_model: str | None = None,
    scoring: str = "samples",
    batch: bool = False,
    measured_reasoning: float | None = None,
    reused: int = 0,
) -> ScreeningEstimate:
    """Tokens and USD for labelling, reasoning, clustering and assignment: the shared prefix
    cached after each stage's first call, a paper's prompt cached for its repetitions 2..n;
    ``scoring="distribution"``: one answer per paper; ``batch``: Batch API prices;
    ``measured_reasoning``: hidden reasoning tokens per answer billed lately; ``reused``:
    papers with reused results (themed and assigned, not labelled or reasoned)."""
    caps = capabilities or get_capabilities(model)
    total_papers = papers_count
    papers_count, paper_tokens_total = _new_papers(papers_count, paper_tokens_total, reused)
    label_static, reason_static = _static_tokens()
    context = 40 + criteria_count * TOKENS_PER_CRITERION
    papers = papers_count * AVG_PAPER_TOKENS if paper_tokens_total is None else paper_tokens_total
    answers = 1 if scoring == "distribution" else repetitions
    calls = label_calls_per_paper(caps, answers)
    per_answer_extra = _reasoning_extra(caps, measured_reasoning)

    label_in, label_cached = _labelling_input(papers_count, papers, label_static + context, calls)
    label_out = papers_count * answers * (LABEL_OUTPUT_TOKENS + per_answer_extra)
    reason_in, reason_out = _reasoning_tokens(
        papers_count, papers, reason_static + context, criteria_count, per_answer_extra
    )
    batches = -(-total_papers // ASSIGN_BATCH)
    assigner = assignment_model or clustering_model
    extra = per_answer_extra if assigner == model else None
    cluster_in, cluster_out, cluster_cost = _clustering(
        clustering_model, assigner, total_papers, batches, extra
    )

    reason_cached = max(papers_count - 1, 0) * cached_prefix_tokens(reason_static + context)
    main_in, main_out = label_in + reason_in, label_out + reason_out
    main_cost = estimate_cost(model, main_in, main_out, label_cached + reason_cached)
    cost = main_cost * (BATCH_DISCOUNT if batch else 1.0) + cluster_cost
    return ScreeningEstimate(
        estimated_input_tokens=int(main_in + cluster_in),
        estimated_cached_input_tokens=int(label_cached + reason_cached),
        estimated_output_tokens=int(main_out + cluster_out),
        cost_per_paper_usd=round(cost / max(total_papers, 1), 8),
        assumptions=_assumptions(
            caps, calls, per_answer_extra, label_cached > 0, scoring, batch, measured_reasoning
        ),
        estimated_cost_usd=round(cost, 4),
        calls=papers_count * (calls + 1) + batches + 3,
    )


def _reasoning_tokens(
    papers_count: int, paper_tokens: int, prefix: int, criteria_count: int, extra: int
) -> tuple[int, int]:
    """Reasoning input and output: a short answer plus one assessment per criterion."""
    assessment = ASSESSMENT_TOKENS_PER_CRITERION * max(criteria_count, 1)
    return (
        papers_count * (prefix + 20) + paper_tokens,
        papers_count * (REASON_OUTPUT_TOKENS + assessment + extra),
    )


def _new_papers(papers: int, tokens: int | None, reused: int) -> tuple[int, int | None]:
    """The papers (and their tokens) left to label and reason once ``reused`` are reused."""
    if not reused or not papers:
        return papers, tokens
    new = max(papers - reused, 0)
    return new, None if tokens is None else tokens * new // papers


def _labelling_input(
    papers_count: int, paper_tokens: int, prefix: int, calls: int
) -> tuple[int, int]:
    """Labelling input tokens and the part of them served from the prompt cache: the shared
    prefix after the first call, and a paper's whole prompt for its calls 2..n."""
    total = calls * (papers_count * (prefix + PAPER_WRAPPER_TOKENS) + paper_tokens)
    cached = max(papers_count - 1, 0) * cached_prefix_tokens(prefix)
    if calls > 1:
        whole = prefix + PAPER_WRAPPER_TOKENS + paper_tokens // max(papers_count, 1)
        cached += papers_count * (calls - 1) * cached_prefix_tokens(whole)
    return total, cached


def _reasoning_extra(caps: ModelCapabilities, measured: float | None) -> int:
    """Hidden reasoning tokens expected per answer: as measured, else the allowance."""
    if not _hidden_reasoning(caps):
        return 0
    return round(measured) if measured is not None else REASONING_MODEL_ALLOWANCE


def _clustering(
    clustering_model: str,
    assignment_model: str,
    papers_count: int,
    batches: int,
    assign_extra: int | None = None,
) -> tuple[int, int, float]:
    """Tokens and USD of stages 3-4: themes on the clustering model (independent of job
    size), assignment (one call per batch of papers) on the assignment model."""
    assign_in = papers_count * ASSIGN_TOKENS_PER_PAPER + batches * 600
    extra = assign_extra
    if extra is None:
        extra = REASONING_MODEL_ALLOWANCE if _is_reasoning(assignment_model) else 0
    assign_out = papers_count * ASSIGN_OUTPUT_PER_PAPER + batches * extra
    theme_in = THEME_TOKENS_PER_TEXT * min(papers_count, THEME_SAMPLE)
    chunks = -(-theme_in // THEME_CHUNK_TOKENS)
    theme_out = chunks * THEME_OUTPUT_PER_CHUNK + THEME_MERGE_OUTPUT
    cost = estimate_cost(clustering_model, theme_in, theme_out) + estimate_cost(
        assignment_model, assign_in, assign_out
    )
    return theme_in + assign_in, theme_out + assign_out, cost


def _is_reasoning(model: str) -> bool:
    try:
        return _hidden_reasoning(get_capabilities(model))
    except LLMError:  # a local model: no hidden reasoning assumed
        return False


def _hidden_reasoning(caps: ModelCapabilities) -> bool:
    """Whether the model's answers carry hidden reasoning at the effort a job asks for: the
    lowest it offers (``llm/ask.py``). "minimal" still reasons a little; models whose lowest
    is "none" (the gpt-5.4 family, their default) do not reason at all."""
    return bool(caps.reasoning_efforts) and "none" not in caps.reasoning_efforts


def _assumptions(
    caps: ModelCapabilities,
    calls: int,
    reasoning_extra: int,
    cached: bool,
    scoring: str = "samples",
    batch: bool = False,
    measured: float | None = None,
) -> list[str]:
    if scoring == "distribution":
        how = " (one answer read as a score distribution from its log-probabilities)"
    else:
        how = " (one call with n answers)" if calls == 1 else " (one per repetition)"
    said = [
        f"{calls} labelling call(s) per paper" + how,
        "the shared system prompt served from the provider's prompt cache after the first "
        "call of each stage, and a paper's whole prompt for its repetitions after the first "
        "(cached input at the model's cached rate)"
        if cached
        else "no prompt-cache hits (the shared prefix is under 1,024 tokens)",
        "Batch API prices (half) for labelling and reasoning; themes and assignment at "
        "standard prices"
        if batch
        else "standard (not Batch API) prices",
    ]
    if reasoning_extra and measured is not None:
        said.append(
            f"{reasoning_extra} hidden reasoning tokens per answer, as this model billed in "
            "this service's recent completed jobs"
        )
    elif reasoning_extra:
        said.append(
            f"{reasoning_extra} hidden reasoning tokens per answer at minimal effort (an "
            "allowance: no completed job on this model yet to measure it from)"
        )
    return said


def format_usd(value: float) -> str:
    return f"${value:.2f}" if value >= 0.01 or value == 0 else f"${value:.4f}"
