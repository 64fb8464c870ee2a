"""The files a researcher hands the CLI: criteria (for ``screen``) and fields (for ``index``).

Both are YAML or JSON. A criteria file::

    questions:                       # optional: the review's research questions
      - Does exercise reduce depression in older adults?
    include:                         # inclusion criteria, one sentence each
      - Randomised controlled trials
      - Participants aged 60 or over
    exclude:                         # exclusion criteria
      - Animal studies
    repetitions: 5                   # optional (1-10, default 5)
    threshold: 3                     # optional: include at final_score >= 3 (default 3)
    model: gpt-5-nano                # optional: default the service's

``criteria:`` may be given instead of ``include``/``exclude``, in the API's own shape
(``[{name, type, value}]``). A fields file is ``fields:`` with the API's ``IndexerField``
objects (``name``, ``description``, ``data_type_primary``...), or that list on its own.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from crystallise.common.types import CLI_THRESHOLD, ModelName, Repetitions, Threshold
from crystallise.errors import BadInput
from crystallise.indexer.schemas import IndexerField

ModelT = TypeVar("ModelT", bound=BaseModel)


class CriteriaFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    questions: list[str] = Field(default_factory=list)
    include: list[str] = Field(default_factory=list)
    exclude: list[str] = Field(default_factory=list)
    criteria: list[dict[str, Any]] = Field(default_factory=list)
    repetitions: Repetitions = 5
    threshold: Threshold = CLI_THRESHOLD
    model: ModelName | None = None

    @model_validator(mode="after")
    def _some_criteria(self) -> CriteriaFile:
        if not (self.include or self.exclude or self.criteria):
            raise ValueError("give at least one criterion under `include`, `exclude` or `criteria`")
        return self

    def api_criteria(self) -> list[dict[str, Any]]:
        """The criteria as the screening API takes them."""
        listed = [{"type": "include", "value": t} for t in self.include]
        listed += [{"type": "exclude", "value": t} for t in self.exclude]
        return [*self.criteria, *listed]


class FieldsFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    fields: list[IndexerField] = Field(min_length=1)
    model: ModelName | None = None


def _load(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise BadInput(f"{path}: cannot read it ({exc})") from None
    if path.suffix.lower() == ".json":
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise BadInput(f"{path}: not valid JSON (line {exc.lineno}: {exc.msg})") from None
    import yaml

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark is not None else ""
        raise BadInput(f"{path}: not valid YAML ({where}{getattr(exc, 'problem', exc)})") from None


def _load_validated(model: type[ModelT], path: Path, list_key: str) -> ModelT:
    """The file as ``model`` (a bare list is ``{list_key: list}``); ``BadInput`` names the
    file and the field at fault."""
    data = _load(path)
    if isinstance(data, list):
        data = {list_key: data}
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'file'}: {e['msg']}" for e in exc.errors()
        )
        raise BadInput(f"{path}: {problems}") from None


def load_criteria(path: Path) -> CriteriaFile:
    """The criteria file, validated; ``BadInput`` names the file, line or field at fault."""
    return _load_validated(CriteriaFile, path, "criteria")


def load_fields(path: Path) -> FieldsFile:
    """The fields file for ``crystallise index``, validated."""
    return _load_validated(FieldsFile, path, "fields")
