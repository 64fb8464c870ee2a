"""The screening part of the PRISMA 2020 flow: counts from a job's results at a threshold,
and the flow diagram drawn from them as SVG (boxes and arrows, black on white, printable)."""

from __future__ import annotations

from collections.abc import Iterable
from html import escape
from typing import Any

from crystallise.db.jobs import ItemRow
from crystallise.screening.assessment import exclusion_reason
from crystallise.screening.schemas import ScreeningResult


def prisma_counts(items: Iterable[ItemRow], threshold: float) -> dict[str, Any]:
    """screened = included + excluded + failed (+ pending, for a job that has not ended)."""
    counts = {"included": 0, "excluded": 0, "failed": 0, "pending": 0, "duplicates_flagged": 0}
    reasons: dict[str, int] = {}
    screened = 0
    for item in items:
        screened += 1
        result = ScreeningResult.of(item)
        if item.input.get("duplicate_of"):
            counts["duplicates_flagged"] += 1
        score = result.final_score
        if result.failed:
            counts["failed"] += 1
        elif score is None:
            counts["pending"] += 1
        elif score >= threshold:
            counts["included"] += 1
        else:
            counts["excluded"] += 1
            reason = exclusion_reason(result, threshold) or "unclear"
            reasons[reason] = reasons.get(reason, 0) + 1
    by_reason = [
        {"reason": r, "count": n} for r, n in sorted(reasons.items(), key=lambda kv: -kv[1])
    ]
    return {"threshold": threshold, "records_screened": screened, **counts,
            "excluded_by_reason": by_reason}  # fmt: skip


_W, _BOX_W, _BOX_H, _GAP = 760, 330, 64, 36


def _box(x: int, y: int, height: int, lines: list[str], bold: bool = False) -> str:
    text = "".join(
        f'<tspan x="{x + 12}" dy="{0 if i == 0 else 18}">{escape(line)}</tspan>'
        for i, line in enumerate(lines)
    )
    weight = ' font-weight="bold"' if bold else ""
    return (
        f'<rect x="{x}" y="{y}" width="{_BOX_W}" height="{height}" fill="white" '
        f'stroke="black" stroke-width="1.5"/>'
        f'<text x="{x + 12}" y="{y + 24}" font-family="Arial, sans-serif" font-size="14"'
        f"{weight}>{text}</text>"
    )


def _arrow(x1: int, y1: int, x2: int, y2: int) -> str:
    return (
        f'<line x1="{x1}" y1="{y1}" x2="{x2}" y2="{y2}" stroke="black" stroke-width="1.5" '
        'marker-end="url(#arrow)"/>'
    )


def prisma_svg(counts: dict[str, Any], title: str = "Screening") -> str:
    """PRISMA 2020 'Screening' and 'Included' boxes, with the exclusions by reason beside."""
    reasons = [f"{r['reason'][:40]}: n = {r['count']}" for r in counts["excluded_by_reason"]]
    reasons = reasons[:12] + (
        [f"... {len(reasons) - 12} more reasons"] if len(reasons) > 12 else []
    )
    excluded_h = max(_BOX_H, 44 + 18 * len(reasons))
    left, right = 20, _W - _BOX_W - 20
    y1 = 50
    y2 = y1 + max(_BOX_H, excluded_h) + _GAP
    parts = [
        _box(left, y1, _BOX_H, [f"Records screened (n = {counts['records_screened']})",
                                f"Duplicates flagged, kept (n = {counts['duplicates_flagged']})"]),
        _box(right, y1, excluded_h, [f"Records excluded (n = {counts['excluded']})", *reasons]),
        _arrow(left + _BOX_W, y1 + _BOX_H // 2, right, y1 + _BOX_H // 2),
        _box(left, y2, _BOX_H, [f"Records included (n = {counts['included']})",
                                f"at a final score of at least {counts['threshold']:g}"], True),
        _arrow(left + _BOX_W // 2, y1 + _BOX_H, left + _BOX_W // 2, y2),
    ]  # fmt: skip
    if counts["failed"] or counts["pending"]:
        parts.append(
            _box(
                right,
                y2,
                _BOX_H,
                [
                    f"Not screened: failed (n = {counts['failed']})",
                    f"pending (n = {counts['pending']})",
                ],
            )
        )
    height = y2 + _BOX_H + 30
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{_W}" height="{height}" '
        f'viewBox="0 0 {_W} {height}"><defs><marker id="arrow" markerWidth="10" '
        'markerHeight="8" refX="9" refY="4" orient="auto"><path d="M0,0 L10,4 L0,8 z" '
        'fill="black"/></marker></defs>'
        f'<rect width="{_W}" height="{height}" fill="white"/>'
        f'<text x="20" y="30" font-family="Arial, sans-serif" font-size="16" '
        f'font-weight="bold">{escape(title)} (PRISMA 2020)</text>' + "".join(parts) + "</svg>"
    )
