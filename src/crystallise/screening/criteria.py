"""Normalising the caller's criteria and questions into the job-static prompt block."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Criterion:
    id: str  # I1, I2 ... for inclusion, E1 ... for exclusion (stable within a job)
    kind: str  # include | exclude
    text: str
    name: str = ""  # the caller's name for it, if any (what reasons and exports show)

    @property
    def label(self) -> str:
        """How a reviewer knows the criterion: its name, else its id and text."""
        return self.name or f"{self.id}: {self.text}"[:120]


def normalise_criteria(raw: list[dict[str, Any]]) -> list[Criterion]:
    """Accept ``{name, type, value}`` (the reference) or ``{category, text, criterion_type}``."""
    out: list[Criterion] = []
    counters = {"include": 0, "exclude": 0}
    for item in raw:
        kind = str(item.get("type") or item.get("criterion_type") or "include").lower()
        kind = "exclude" if kind.startswith("ex") else "include"
        label = item.get("name") or item.get("category") or ""
        body = item.get("value") or item.get("text") or item.get("description") or ""
        text = f"{label}: {body}" if label and body else str(label or body)
        if not text.strip():
            continue
        counters[kind] += 1
        cid = f"{'I' if kind == 'include' else 'E'}{counters[kind]}"
        out.append(Criterion(cid, kind, text, str(label).strip()[:120]))
    return out


def job_context(criteria: list[Criterion], questions: list[str]) -> str:
    """The job-static block, byte-identical for every paper of a job (prompt caching)."""
    lines = ["Research questions:"]
    lines += [f"- Q{i}: {q}" for i, q in enumerate(questions, 1)] or ["- (none given)"]
    lines.append("Inclusion criteria (all must hold):")
    inc = [c for c in criteria if c.kind == "include"]
    lines += [f"- {c.id}: {c.text}" for c in inc] or ["- (none given)"]
    lines.append("Exclusion criteria (any one excludes):")
    exc = [c for c in criteria if c.kind == "exclude"]
    lines += [f"- {c.id}: {c.text}" for c in exc] or ["- (none given)"]
    return "\n".join(lines)


def criterion_ids(criteria: list[Criterion], questions: list[str]) -> list[str]:
    ids = [c.id for c in criteria] + [f"Q{i}" for i in range(1, len(questions) + 1)]
    return ids or ["none"]
