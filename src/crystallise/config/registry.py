"""Per-service runtime defaults (§10.2), overridable through the configuration API."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from sqlalchemy.exc import SQLAlchemyError

from crystallise.common.logging import get_logger
from crystallise.config.model_capabilities import capabilities_for
from crystallise.config.settings import Settings
from crystallise.errors import NotFound
from crystallise.prompts.registry import get_prompt

log = get_logger(__name__)


class ServiceConfig(BaseModel):
    """The effective configuration of one AI service."""

    service_id: str
    model: str
    system_prompt: str | None = None
    prompt_template_id: str | None = None
    temperature: float | None = None
    max_output_tokens: int = 8192
    extra: dict[str, Any] = Field(default_factory=dict)


SERVICE_DEFAULTS: dict[str, dict[str, Any]] = {
    "screening": {
        "model": "gpt-5-nano",
        "prompt_template_id": "screening.labelling",
        "max_output_tokens": 2048,
    },
    "screening.clustering": {
        "model": "gpt-4.1",
        "prompt_template_id": "screening.theme_generation",
        "temperature": 0.2,
        "max_output_tokens": 8192,
    },
    "extraction": {"model": "gpt-5-mini", "prompt_template_id": "indexer.extraction"},
    "indexer": {"model": "gpt-4.1", "prompt_template_id": "indexer.field_suggestion"},
    "criteria": {
        "model": "gpt-4.1",
        "prompt_template_id": "criteria.generation",
        "temperature": 0.2,
    },
    "criteria.analyze_question": {
        "model": "gpt-5-mini",
        "prompt_template_id": "criteria.question_analysis",
    },
    "deduplication": {
        "model": "gpt-4.1",
        "prompt_template_id": "criteria.consolidation",
        "temperature": 0.0,
    },
}
_FALLBACK: dict[str, Any] = {"model": "gpt-4.1", "max_output_tokens": 8192}
REFRESH_S = 5.0  # how stale another process's change may be seen here


class ServiceConfigUpdate(BaseModel):
    """A change to one service's config; fields left out stay as they are."""

    model_config = ConfigDict(extra="forbid")
    model: str | None = Field(None, min_length=1, max_length=200)
    system_prompt: str | None = Field(None, max_length=100_000)
    prompt_template_id: str | None = None
    temperature: float | None = Field(None, ge=0.0, le=2.0, allow_inf_nan=False)
    max_output_tokens: int | None = Field(None, gt=0, le=1_000_000)
    extra: dict[str, Any] | None = None

    @field_validator("prompt_template_id")
    @classmethod
    def _known_prompt(cls, value: str | None) -> str | None:
        if value is not None and get_prompt(value) is None:
            raise ValueError(f"unknown prompt_template_id '{value}'")
        return value


class OverrideStore(Protocol):
    """Where overrides are kept (``db.service_configs.ServiceConfigStore``)."""

    def all_overrides(self) -> dict[str, dict[str, Any]]: ...

    def merge_override(self, service_id: str, changes: dict[str, Any]) -> dict[str, Any]: ...


class ConfigRegistry:
    """Defaults merged with stored overrides; the store makes a change survive restarts.

    The overrides are held in memory, so reading a config never touches the database (and
    never blocks the event loop). A change made here is seen here at once; a change made by
    another process (another API worker, another replica on the same database) within
    ``REFRESH_S``: a read that finds the copy older than that reloads it, in a worker thread
    when called on the event loop (that read still gets the copy it found), in place
    otherwise. A reload that fails (database down) keeps the copy and is tried again later."""

    def __init__(
        self,
        store: OverrideStore,
        default_model: str | None = None,
        clustering_model: str | None = None,
        *,
        service_model: str | None = None,
    ) -> None:
        self._store = store
        self._defaults = {k: dict(v) for k, v in SERVICE_DEFAULTS.items()}
        self._fallback = dict(_FALLBACK)
        if service_model:  # CRYSTALLISE_SERVICE_MODEL: one model (a local server) for all
            for defaults in (*self._defaults.values(), self._fallback):
                defaults["model"] = service_model
            default_model = clustering_model = None
        # CRYSTALLISE_DEFAULT_MODEL / CRYSTALLISE_CLUSTERING_MODEL seed the screening services
        if default_model:
            self._defaults["screening"]["model"] = default_model
        if clustering_model:
            self._defaults["screening.clustering"]["model"] = clustering_model
        self._overrides: dict[str, dict[str, Any]] = {}
        self._loaded_at = float("-inf")
        self._reloading = threading.Lock()
        self._changes = 0  # updates made here: a reload that began before one is dropped

    def refresh(self, wait: bool = False) -> None:
        """Reload every stored override (blocking: call it off the event loop); returns at
        once when a reload is under way, unless ``wait``."""
        if not self._reloading.acquire(blocking=wait):
            return  # a reload is under way
        try:
            changes = self._changes
            loaded = self._store.all_overrides()
            if changes == self._changes:
                self._overrides = loaded
            self._loaded_at = time.monotonic()
        except (SQLAlchemyError, OSError) as exc:  # keep the copy; the next read tries again
            log.warning("service_config_reload_failed", error=type(exc).__name__)
        finally:
            self._reloading.release()

    def _override(self, service_id: str) -> dict[str, Any]:
        if time.monotonic() - self._loaded_at > REFRESH_S:
            try:
                asyncio.get_running_loop().run_in_executor(None, self.refresh)
            except RuntimeError:  # no event loop in this thread: reloading here blocks nobody
                self.refresh()
        return self._overrides.get(service_id, {})

    def service_ids(self) -> list[str]:
        return sorted(self._defaults)

    def is_known(self, service_id: str) -> bool:
        return service_id in self._defaults

    def require_known(self, service_id: str) -> None:
        """404 naming the known ids for an id that is not a service."""
        if not self.is_known(service_id):
            raise NotFound(
                f"Unknown service id '{service_id[:64]}'; known: " + ", ".join(self.service_ids())
            )

    def get(self, service_id: str) -> ServiceConfig:
        """Effective config; an unknown id gets the generic default, not an error. A stored
        override that no longer validates is logged and ignored, never a failed request."""
        defaults: dict[str, Any] = {**self._fallback, **self._defaults.get(service_id, {})}
        override = self._override(service_id)
        try:
            config = ServiceConfig(service_id=service_id, **{**defaults, **override})
        except ValidationError as exc:
            bad = {str(e["loc"][0]) for e in exc.errors() if e.get("loc")}
            log.warning("service_config_ignored", service_id=service_id, fields=sorted(bad))
            kept = {k: v for k, v in override.items() if k not in bad}
            try:
                config = ServiceConfig(service_id=service_id, **{**defaults, **kept})
            except ValidationError:
                config = ServiceConfig(service_id=service_id, **defaults)
        if config.system_prompt is None and config.prompt_template_id:
            prompt = get_prompt(config.prompt_template_id)
            if prompt is not None and prompt.system:
                config.system_prompt = prompt.system
        return config

    def system_override(self, service_id: str) -> str | None:
        """The admin's replacement system prompt for this service, if one was set."""
        value = self._override(service_id).get("system_prompt")
        return value if isinstance(value, str) and value.strip() else None

    def all(self) -> list[ServiceConfig]:
        return [self.get(sid) for sid in self.service_ids()]

    def stored(self, service_id: str | None = None) -> list[ServiceConfig]:
        """What the store holds now, reloaded first (blocking: the configuration API's
        reads, in worker threads, show every process's latest change at once)."""
        self.refresh(wait=True)
        ids = [service_id] if service_id is not None else self.service_ids()
        return [self.get(sid) for sid in ids]

    def apply(
        self, settings: Settings, service_id: str, change: ServiceConfigUpdate
    ) -> ServiceConfig:
        """``PUT /v1/config/services/{id}``: a partial update of a known service (a field sent
        as null resets to its default); a model this deployment does not know is a 400
        naming the known ones. Blocking: call it off the event loop."""
        self.require_known(service_id)
        changes = change.model_dump(exclude_unset=True)
        if changes.get("model"):
            capabilities_for(settings, changes["model"])  # raises the validation LLMError
        return self.update(service_id, changes)

    def update(self, service_id: str, changes: dict[str, Any]) -> ServiceConfig:
        """Store the change (blocking: call it off the event loop); seen here at once."""
        merged = self._store.merge_override(service_id, changes)
        self._changes += 1
        self._overrides = {**self._overrides, service_id: merged}
        return self.get(service_id)
