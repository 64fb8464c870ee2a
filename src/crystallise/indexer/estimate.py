"""Pre-flight token/cost estimate for indexing: grows with records and fields."""

from __future__ import annotations

import json
from functools import lru_cache

from pydantic import BaseModel

from crystallise.indexer.schema_builder import build_extraction_tool
from crystallise.indexer.schemas import IndexerField
from crystallise.llm.cost import estimate_cost
from crystallise.llm.tokens import count_tokens
from crystallise.prompts import indexer as prompts

AVG_RECORD_TOKENS = 350
OUTPUT_TOKENS_PER_FIELD = 70  # evidence quote + value + one-sentence reasoning + confidence
DISCLAIMER = (
    "Estimate based on empirical averages. Actual cost may vary +-30% with abstract length, "
    "list sizes and hidden reasoning tokens. Pricing is hardcoded in "
    "crystallise.llm.cost.DEFAULT_PRICING_PER_1M and may drift from OpenAI's public rates."
)


@lru_cache(maxsize=1)
def _system_tokens() -> int:
    return count_tokens(prompts.EXTRACTION.system or "")


class IndexingEstimate(BaseModel):
    """What an extraction over ``record_count`` records is expected to use and cost."""

    estimated_input_tokens: int
    estimated_output_tokens: int
    estimated_cost_usd: float


def estimate_indexing(
    model: str, fields: list[IndexerField], record_count: int
) -> IndexingEstimate:
    tool_tokens = count_tokens(json.dumps(build_extraction_tool(fields)))
    per_record_in = _system_tokens() + tool_tokens + AVG_RECORD_TOKENS + 20
    per_record_out = OUTPUT_TOKENS_PER_FIELD * len(fields)
    inp, out = per_record_in * record_count, per_record_out * record_count
    return IndexingEstimate(
        estimated_input_tokens=inp,
        estimated_output_tokens=out,
        estimated_cost_usd=round(estimate_cost(model, inp, out), 4),
    )
