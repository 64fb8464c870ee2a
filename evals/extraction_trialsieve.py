"""Score AutoIndexer extraction against TrialSieve gold spans (sample size, condition, drugs).

    # against the configured endpoint (CRYSTALLISE_OPENAI_BASE_URL / key), held-out test split:
    uv run --frozen python -m evals.extraction_trialsieve --split test --limit 50 --model gpt-5-mini
    # against the fake server (proves the script runs; the figures mean nothing):
    uv run --frozen python -m evals.extraction_trialsieve --fake --limit 5

Scoring (only records whose gold list for the field is non-empty, as the gold is not
exhaustive): sample_size is correct when the extracted number equals one of the gold
numbers or their sum (gold lists per-arm sizes); condition and interventions report recall
(gold spans matched by an extracted value, case-insensitive containment either way) and
precision (extracted values matching a gold span). Quote validity: share of evidence quotes
found verbatim (whitespace/case tolerant) in title + abstract.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import pathlib
import re
import sys
from typing import Any

from crystallise.common.quotes import normalise
from crystallise.config.settings import Settings
from crystallise.indexer.pipeline import ExtractionContext, extract_all
from crystallise.indexer.schemas import IndexerField
from crystallise.llm.ask import plan_model
from crystallise.llm.client import LLMClient
from evals.common import eval_settings

GOLD = (
    pathlib.Path(__file__).resolve().parents[2]
    / "shared"
    / "datasets"
    / "extraction"
    / "trialsieve_gold.csv"
)
FIELDS = [
    IndexerField(
        name="sample_size",
        data_type_primary="number",
        description="Total number of participants enrolled or randomised in the study.",
    ),
    IndexerField(
        name="condition",
        data_type_primary="list_text",
        description="Every disease or condition the participants have, as worded in the record.",
    ),
    IndexerField(
        name="interventions",
        data_type_primary="list_text",
        description="Every drug studied as an intervention or comparator (names as written).",
    ),
]
_WORDS = {
    w: i
    for i, w in enumerate(
        [
            "zero",
            "one",
            "two",
            "three",
            "four",
            "five",
            "six",
            "seven",
            "eight",
            "nine",
            "ten",
            "eleven",
            "twelve",
            "thirteen",
            "fourteen",
            "fifteen",
            "sixteen",
            "seventeen",
            "eighteen",
            "nineteen",
            "twenty",
        ]
    )
}
_TENS = {
    "twenty": 20,
    "thirty": 30,
    "forty": 40,
    "fifty": 50,
    "sixty": 60,
    "seventy": 70,
    "eighty": 80,
    "ninety": 90,
}


def parse_number(text: str) -> float | None:
    cleaned = text.replace(",", "").strip().lower()
    match = re.search(r"\d+(?:\.\d+)?", cleaned)
    if match:
        return float(match.group(0))
    parts = re.split(r"[-\s]+", cleaned)
    total = 0
    for part in parts:
        if part in _TENS:
            total += _TENS[part]
        elif part in _WORDS:
            total += _WORDS[part]
        elif part == "hundred":
            total = max(total, 1) * 100
    return float(total) if total else None


def load(split: str, limit: int, gold: pathlib.Path = GOLD) -> list[dict[str, Any]]:
    with gold.open(newline="", encoding="utf-8") as fh:
        rows = [r for r in csv.DictReader(fh) if split == "all" or r["split"] == split]
    return rows[:limit]


def _matches(a: str, b: str) -> bool:
    a, b = normalise(a), normalise(b)
    return bool(a and b) and (a in b or b in a)


def score(rows: list[dict[str, Any]], results: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    ss_n = ss_ok = 0
    lists = {"condition": "condition", "interventions": "drug_interventions"}
    tallies = {k: [0, 0, 0, 0] for k in lists}  # gold_hit, gold_total, pred_hit, pred_total
    quotes = verified = 0
    for row, result in zip(rows, results, strict=True):
        if result.get("indexing_status") != "ok":
            continue
        gold_sizes = [
            n for n in (parse_number(s) for s in json.loads(row["sample_sizes"])) if n is not None
        ]
        if gold_sizes:
            ss_n += 1
            value = result["sample_size"]["value"]
            ss_ok += value is not None and (
                float(value) in gold_sizes or float(value) == sum(gold_sizes)
            )
        for field, column in lists.items():
            gold = json.loads(row[column])
            if not gold:
                continue
            predicted = result[field]["value"] or []
            t = tallies[field]
            t[0] += sum(any(_matches(g, p) for p in predicted) for g in gold)
            t[1] += len(gold)
            t[2] += sum(any(_matches(p, g) for g in gold) for p in predicted)
            t[3] += len(predicted)
        for field in ("sample_size", "condition", "interventions"):
            evidence = result[field]["evidence"]
            quotes += len(evidence)
            verified += len(evidence) - len(result[field]["unverified_evidence"])
    out["sample_size"] = {"records": ss_n, "accuracy": ss_ok / ss_n if ss_n else float("nan")}
    for field, t in tallies.items():
        out[field] = {
            "records": t[1],
            "recall": t[0] / t[1] if t[1] else float("nan"),
            "precision": t[2] / t[3] if t[3] else float("nan"),
        }
    out["quotes"] = {"records": quotes, "valid": verified / quotes if quotes else float("nan")}
    return out


async def evaluate(
    settings: Settings, model: str, rows: list[dict[str, Any]], workers: int
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    llm = LLMClient(settings)
    try:
        ctx = ExtractionContext(llm, plan_model(llm.settings, model), FIELDS)
        records = [{"ID": r["id"], "Title": r["title"], "Abstract": r["abstract"]} for r in rows]
        results = await extract_all(ctx, records, max_workers=workers, batch_size=50)
        return results, {**ctx.tally.summary(), "model_version": ctx.model_version}
    finally:
        await llm.aclose()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--split", default="test", choices=["train", "validation", "test", "all"])
    parser.add_argument("--limit", type=int, default=50)
    parser.add_argument("--model", default="gpt-5-mini")
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--fake", action="store_true", help="run against the bundled fake server")
    parser.add_argument("--gold", type=pathlib.Path, default=GOLD, help="TrialSieve gold CSV")
    args = parser.parse_args(argv)
    rows = load(args.split, args.limit, args.gold)
    with eval_settings(args.fake) as settings:
        results, usage = asyncio.run(evaluate(settings, args.model, rows, args.workers))
    figures = score(rows, results)
    errors = sum(r.get("indexing_status") != "ok" for r in results)
    print(
        f"TrialSieve {args.split} split, {len(rows)} records, model {args.model} "
        f"(served as {usage.get('model_version')}), {errors} record errors"
    )
    if args.fake:
        print(
            "NOTE: run against the fake OpenAI server: values are random, so these figures mean nothing."
        )
    print("| field | scored records | metric |")
    print("|---|---|---|")
    print(
        f"| sample_size | {figures['sample_size']['records']:.0f} | accuracy {figures['sample_size']['accuracy']:.3f} |"
    )
    for field in ("condition", "interventions"):
        f = figures[field]
        print(
            f"| {field} | {f['records']:.0f} gold spans | recall {f['recall']:.3f}, precision {f['precision']:.3f} |"
        )
    print(
        f"| evidence quotes | {figures['quotes']['records']:.0f} | valid {figures['quotes']['valid']:.3f} |"
    )
    print(
        f"usage: {usage['input_tokens']} in / {usage['output_tokens']} out tokens, ${usage['estimated_cost_usd']:.4f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
