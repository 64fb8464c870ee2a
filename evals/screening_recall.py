"""Screening quality on labelled datasets, recall first (PROMPTING.md evaluation protocol).

    # configured endpoint, a dev set (tune thresholds here), stratified sample of 200 records:
    uv run --frozen python -m evals.screening_recall --dataset cdss_ro_2024 --limit 200 --model gpt-5-nano
    # held-out sets: report only, never tune on them
    uv run --frozen python -m evals.screening_recall --dataset smid_2020 --model gpt-5-nano
    # against the fake server (proves the script runs; the figures mean nothing):
    uv run --frozen python -m evals.screening_recall --fake --dataset cdss_ro_2024 --limit 40

Runs the real screening pipeline (job store, runner) and reports, for each aggregation rule
of the N repetitions (mean, max, k-of-N ≥ 4): the highest threshold reaching 95% and 100%
recall, recall / missed includes / specificity / precision there, and WSS@95 on the
score ranking with pessimistic ties, plus the same for a non-LLM baseline (TF-IDF cosine
similarity of each record to the criteria text). Records without an abstract are reported
separately. Then the audit figures (issue 25): of the papers the AI excludes, the share that
names the criterion excluding them and the share that backs it with a verified quote. Limit sampling keeps every include (recall needs them) and fills with excludes.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import math
import pathlib
import random
import re
import sys
from collections import Counter
from collections.abc import Callable
from typing import Any

from crystallise.config.settings import Settings
from crystallise.screening.criteria import Criterion
from evals.common import eval_settings

DATA = pathlib.Path(__file__).resolve().parents[2] / "shared" / "datasets"
WORD = re.compile(r"[a-z][a-z0-9\-]{2,}")


def load(
    dataset: str, limit: int | None, seed: int = 7, data: pathlib.Path = DATA
) -> tuple[list[dict[str, Any]], list[Criterion], str]:
    with (data / "screening" / f"{dataset}.csv").open(newline="", encoding="utf-8") as fh:
        rows = [
            {
                "id": r["id"],
                "title": r["title"],
                "abstract": r["abstract"],
                "label": int(r["label"]),
            }
            for r in csv.DictReader(fh)
        ]
    if dataset == "appenzeller_herzog_2019_wilson":
        rows = [
            r for i, r in enumerate(rows, 1) if i not in (98, 148)
        ]  # duplicates with conflicting labels
    if limit and limit < len(rows):
        includes = [r for r in rows if r["label"] == 1]
        excludes = [r for r in rows if r["label"] == 0]
        random.Random(seed).shuffle(excludes)
        rows = includes[:limit] + excludes[: max(0, limit - len(includes))]
    text = (data / "criteria" / f"{dataset}.txt").read_text(encoding="utf-8")
    lines = [ln.strip().lstrip("-•* ").strip() for ln in text.splitlines()]
    topic = next((ln for ln in lines if ln.lower().startswith("topic:")), "")
    bullets = [
        ln
        for ln in lines
        if ln and not ln.lower().startswith(("source:", "topic:", "not the review"))
    ]
    criteria = [
        Criterion(f"I{i}", "exclude" if ln.lower().startswith("exclu") else "include", ln)
        for i, ln in enumerate(bullets[:12], 1)
    ] or [Criterion("I1", "include", topic)]
    return rows, criteria, topic or " ".join(bullets)


def tfidf_scores(rows: list[dict[str, Any]], query: str) -> list[float]:
    docs = [Counter(WORD.findall(f"{r['title']} {r['abstract']}".lower())) for r in rows]
    df = Counter(w for d in docs for w in d)
    idf = {w: math.log((1 + len(docs)) / (1 + n)) + 1 for w, n in df.items()}
    q = Counter(WORD.findall(query.lower()))

    def vec(c: Counter[str]) -> dict[str, float]:
        return {w: n * idf.get(w, 1.0) for w, n in c.items()}

    qv = vec(q)
    qn = math.sqrt(sum(v * v for v in qv.values())) or 1.0
    out = []
    for d in docs:
        dv = vec(d)
        dn = math.sqrt(sum(v * v for v in dv.values())) or 1.0
        out.append(sum(qv[w] * dv.get(w, 0.0) for w in qv) / (qn * dn))
    return out


def metrics(labels: list[int], scores: list[float]) -> dict[str, Any]:
    """Thresholds for 95%/100% recall and WSS@95 with pessimistic ties."""
    pos = sum(labels)
    n = len(labels)
    out: dict[str, Any] = {"n": n, "includes": pos}
    if pos == 0:
        return out
    for target in (0.95, 1.0):
        best = None
        for t in sorted(set(scores), reverse=True):
            tp = sum(1 for lab, s in zip(labels, scores, strict=True) if lab and s >= t)
            if tp / pos >= target:
                best = t
                break
        assert best is not None
        tp = sum(1 for lab, s in zip(labels, scores, strict=True) if lab and s >= best)
        fp = sum(1 for lab, s in zip(labels, scores, strict=True) if not lab and s >= best)
        tn = n - pos - fp
        out[f"@{int(target * 100)}"] = {
            "threshold": round(best, 3),
            "recall": tp / pos,
            "missed": pos - tp,
            "specificity": tn / max(n - pos, 1),
            "precision": tp / max(tp + fp, 1),
        }
    # WSS@95: screen in score order, ties broken against us (includes last within a tie)
    order = sorted(range(n), key=lambda i: (-scores[i], labels[i]))
    needed = math.ceil(0.95 * pos)
    found = 0
    for screened, i in enumerate(order, 1):
        found += labels[i]
        if found >= needed:
            out["wss@95"] = (n - screened) / n - 0.05
            break
    return out


async def run_pipeline(
    settings: Settings,
    rows: list[dict[str, Any]],
    criteria: list[Criterion],
    model: str,
    repetitions: int,
) -> dict[str, dict[str, Any]]:
    from crystallise.jobs.start import start_services, wait_for_job
    from crystallise.jobs.submit import submit_screening
    from crystallise.screening.schemas import ScreeningRequest

    services = await start_services(settings.model_copy(update={"job_queue": "inprocess"}))
    body = ScreeningRequest(
        papers=[{k: r[k] for k in ("id", "title", "abstract")} for r in rows],  # type: ignore[misc]
        criteria=[{"name": c.text, "type": c.kind} for c in criteria],
        model=model,
        repetitions=repetitions,
        threshold=AUDIT_THRESHOLD,
    )
    job_id = (await submit_screening(services, body)).id
    await wait_for_job(services, "screening", job_id)
    row = services.jobs.get_job("screening", job_id)
    results = {i.item_id: i.result or {} for i in services.jobs.iter_items(job_id)}
    await services.aclose()
    if row is None or row.status != "completed":
        raise SystemExit(
            f"screening job ended {row.status if row else '?'}: {row.error if row else ''}"
        )
    return results


def report(name: str, labels: list[int], scores: list[float]) -> None:
    m = metrics(labels, scores)
    if "@95" not in m:
        print(f"| {name} | {m['n']} | 0 includes: nothing to measure | | |")
        return
    cells = []
    for key in ("@95", "@100"):
        r = m[key]
        cells.append(
            f"t={r['threshold']} recall {r['recall']:.3f} (missed {r['missed']}), "
            f"spec {r['specificity']:.3f}, prec {r['precision']:.3f}"
        )
    print(
        f"| {name} | {m['n']} ({m['includes']} inc) | {cells[0]} | {cells[1]} | {m.get('wss@95', float('nan')):.3f} |"
    )


def audit_report(rows: list[dict[str, Any]], results: dict[str, dict[str, Any]]) -> None:
    """Issue 25: of the papers the AI excludes (final_score below the job's threshold, 3),
    how many name the criterion that excludes them, and how many back it with a quote found
    in the paper's text (``quote_verified``); every paper with an assessment at all."""
    from crystallise.screening.assessment import exclusion_reason
    from crystallise.screening.schemas import ScreeningResult

    typed = [ScreeningResult.model_validate({"id": r["id"], **results[r["id"]]}) for r in rows]
    excluded = [r for r in typed if r.final_score is not None]
    excluded = [
        r for r in excluded if r.final_score is not None and r.final_score < AUDIT_THRESHOLD
    ]
    assessed = sum(bool(r.criteria_assessment) for r in typed)
    named = verified = 0
    for result in excluded:
        reason = exclusion_reason(result, AUDIT_THRESHOLD)
        if reason and reason != "unclear":
            named += 1
            entries = [a for a in result.criteria_assessment or [] if a.criterion == reason]
            verified += any(a.quote_verified for a in entries)
    n = len(excluded)
    share = (lambda k: f"{k} ({k / n:.0%})") if n else (lambda k: str(k))
    print("| papers with an assessment | excluded by the AI (score < 3) | with a criterion named "
          "| with a verified quote for it | reason 'unclear' |")  # fmt: skip
    print("|---|---|---|---|---|")
    print(f"| {assessed} of {len(rows)} | {n} | {share(named)} | {share(verified)} "
          f"| {share(n - named)} |")  # fmt: skip


AUDIT_THRESHOLD = 3.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--dataset", default="cdss_ro_2024")
    parser.add_argument("--limit", type=int, default=200)
    parser.add_argument("--model", default="gpt-5-nano")
    parser.add_argument("--repetitions", type=int, default=5)
    parser.add_argument("--fake", action="store_true")
    parser.add_argument("--data-dir", type=pathlib.Path, default=DATA, help="the datasets folder")
    args = parser.parse_args(argv)
    rows, criteria, query = load(args.dataset, args.limit, data=args.data_dir)
    with eval_settings(args.fake) as settings:
        results = asyncio.run(run_pipeline(settings, rows, criteria, args.model, args.repetitions))
    labels = [r["label"] for r in rows]
    rules: dict[str, Callable[[dict[str, Any]], float]] = {
        "LLM mean": lambda r: float(r["final_score"]),
        "LLM max": lambda r: float(r["max_score"]),
        "LLM k-of-N (runs ≥ 4)": lambda r: float(sum(s >= 4 for s in r["scores"])),
    }
    print(
        f"{args.dataset}: {len(rows)} records, {sum(labels)} includes, model {args.model}, N={args.repetitions}"
    )
    if args.fake:
        print(
            "NOTE: run against the fake OpenAI server: scores are random, so these figures mean nothing."
        )
    print("| ranker | records | 95% recall | 100% recall | WSS@95 |")
    print("|---|---|---|---|---|")
    for name, rule in rules.items():
        report(name, labels, [rule(results[r["id"]]) for r in rows])
    report(
        "TF-IDF baseline",
        labels,
        tfidf_scores(rows, query + " " + " ".join(c.text for c in criteria)),
    )
    with_abs = [i for i, r in enumerate(rows) if r["abstract"].strip()]
    no_abs = [i for i, r in enumerate(rows) if not r["abstract"].strip()]
    for name, idx in (("LLM mean, with abstract", with_abs), ("LLM mean, no abstract", no_abs)):
        if idx:
            report(
                name,
                [labels[i] for i in idx],
                [float(results[rows[i]["id"]]["final_score"]) for i in idx],
            )
    flagged = sum("high_disagreement" in results[r["id"]].get("flags", []) for r in rows)
    print(f"high-disagreement papers (route to humans): {flagged}")
    print()
    audit_report(rows, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
