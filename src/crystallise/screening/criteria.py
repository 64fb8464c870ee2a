"""A criterion as callers send it (``CriterionInput``: the one definition, for screening jobs
and the criteria helpers), as a job holds it (``Criterion``), and the job-static prompt block."""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict


class CriterionInput(BaseModel):
    """One criterion in either shape callers use: the reference's ``{name, type, value}`` or
    the criteria helpers' ``{id, category, text, criterion_type}`` (``description`` for the
    text too). Numbers are read as text; other keys are kept as sent."""

    model_config = ConfigDict(extra="allow", coerce_numbers_to_str=True)

    id: int | str | None = None
    name: str | None = None
    category: str | None = None
    type: str | None = None
    criterion_type: str | None = None
    value: str | None = None
    text: str | None = None
    description: str | None = None

    @property
    def kind(self) -> str:
        """include or exclude (anything starting "ex" excludes; the default includes)."""
        given = (self.type or self.criterion_type or "include").lower()
        return "exclude" if given.startswith("ex") else "include"

    @property
    def heading(self) -> str:
        """Its name (or category), e.g. "Population"."""
        return self.name or self.category or ""

    @property
    def statement(self) -> str:
        """What it requires, e.g. "Adults"."""
        return self.value or self.text or self.description or ""


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


def normalise_criteria(raw: list[CriterionInput]) -> list[Criterion]:
    """The caller's criteria as the job holds them, numbered I1.. and E1.. (empty ones
    dropped)."""
    out: list[Criterion] = []
    counters = {"include": 0, "exclude": 0}
    for item in raw:
        kind, label, body = item.kind, item.heading, item.statement
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
