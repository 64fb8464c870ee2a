"""Boot-time settings: every ``CRYSTALLISE_*`` environment variable, read once."""

from __future__ import annotations

from datetime import date
from functools import lru_cache
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from crystallise.tenancy import DEFAULT_TENANT

# how structured answers are asked for (crystallise.llm.compat.Strategy), or auto
StructuredOutput = Literal[
    "auto", "json_schema", "json_object", "guided_json", "ollama_format", "tool_call", "prompt"
]


class ModelOverride(BaseModel):
    """An operator's word on what one model (usually on a local server) can do."""

    model_config = ConfigDict(extra="forbid")

    context_window: int | None = Field(None, ge=256)
    max_output_tokens: int | None = Field(None, ge=16)
    supports_temperature: bool | None = None
    supports_n: bool | None = None
    supports_logprobs: bool | None = None
    supports_tools: bool | None = None
    structured_output: StructuredOutput | None = None


class TenantConfig(BaseModel):
    """One team on a shared deployment: its service keys and optional monthly budget."""

    model_config = ConfigDict(extra="forbid")
    keys: list[str] = Field(min_length=1)
    budget_usd: float | None = Field(None, ge=0, allow_inf_nan=False)


class Settings(BaseSettings):
    """Typed settings; an optional ``.env`` file in the working directory is read too."""

    model_config = SettingsConfigDict(
        env_prefix="CRYSTALLISE_",
        env_file=".env",
        extra="ignore",
        populate_by_name=True,
    )

    openai_api_key: SecretStr = Field(
        SecretStr(""),
        description="Server-wide OpenAI key; per-request X-OpenAI-API-Key wins.",
    )
    openai_env_api_key: SecretStr = Field(
        SecretStr(""),
        validation_alias=AliasChoices("OPENAI_API_KEY"),
        description="The conventional OPENAI_API_KEY, read (never written) as a fallback.",
    )
    openai_base_url: str = Field(
        "",
        description="Any OpenAI-compatible endpoint (OpenAI, Azure, vLLM, Ollama, llama.cpp).",
    )
    database_url: str = Field("", description="Empty: SQLite file in data_dir; or postgresql://")
    data_dir: Path = Field(Path("data"), description="Where the embedded SQLite file lives.")
    default_model: str = Field("gpt-5-nano", description="Screening labelling/reasoning model.")
    clustering_model: str = Field("gpt-4.1", description="Model for screening stages 3-4.")
    assignment_model: str = Field(
        "",
        description="Model that assigns each paper's reasoning to a theme (screening stage "
        "4, one call per 25 papers). Empty: the labelling model, the cheapest adequate path "
        "(a closed choice among at most 11 themes); themes themselves still come from the "
        "clustering model.",
    )
    service_model: str = Field(
        "",
        description="One model for every service (a local server that serves one model); "
        "replaces the per-service defaults, CRYSTALLISE_DEFAULT_MODEL and "
        "CRYSTALLISE_CLUSTERING_MODEL. Admin config per service still wins.",
    )
    max_concurrent_requests: int = Field(
        10,
        ge=1,
        description="Cap on in-flight model calls. When set, also the ceiling of adaptive "
        "mode (a local server with 4 slots); unset, adaptive mode starts at 10 and grows "
        "up to CRYSTALLISE_MAX_ADAPTIVE_CONCURRENCY.",
    )
    adaptive_concurrency: bool = Field(
        True,
        description="Raise concurrency until rate-limit headers, 429s or rising latency say "
        "stop; false: a fixed max_concurrent_requests.",
    )
    max_adaptive_concurrency: int = Field(256, ge=1, description="Ceiling for adaptive mode.")
    batch_poll_s: float = Field(
        30.0,
        gt=0,
        le=3600,
        description='How often a job submitted with "batch": true asks the provider whether '
        "its Batch API batch has finished.",
    )
    retry_delays: list[float] = Field(
        [2.0, 8.0, 30.0], description="Async retry backoff in seconds (one per retry)."
    )
    request_timeout_s: float = Field(120.0, gt=0, description="Per model call timeout.")
    api_keys: str = Field("", description="Comma-separated service keys; empty = dev mode.")
    docs_require_key: bool = Field(
        False,
        description="Put /docs and /openapi.json behind the service key (default: public, "
        "they describe the API and hold no data).",
    )
    sync_timeout_s: float = Field(
        150.0,
        gt=0,
        description="Bound on the total time of one synchronous AI request (every model call "
        "and retry together); over it the caller gets a retryable `timeout` error.",
    )
    admin_api_keys: str = Field(
        "",
        description="Comma-separated admin keys: PUT config, and see and manage every "
        "tenant's jobs, usage and metrics.",
    )
    tenants: dict[str, TenantConfig] = Field(
        default_factory=dict,
        description='JSON: {"alice": {"keys": ["k-alice"], "budget_usd": 50}, "bob": '
        '{"keys": ["k-bob"]}}. Each tenant sees only its own jobs and spends at most its '
        "monthly budget (UTC calendar month); keys in CRYSTALLISE_API_KEYS belong to the "
        "'default' tenant.",
    )
    api_host: str = Field(
        "",
        description="Bind host. Unset: 0.0.0.0 when service keys are configured, 127.0.0.1 "
        "(this machine only) in dev mode; set explicitly (or `serve --host`) it is used as "
        "given, with a loud warning when it opens a key-less service to the network.",
    )
    api_port: int = Field(8005, description="Bind port.")
    max_request_bytes: int = Field(64 * 1024 * 1024, description="Bigger bodies get 413.")
    max_papers_per_job: int = Field(50_000, ge=1, description="Papers accepted per job.")
    parse_time_budget_s: float = Field(
        60.0,
        gt=0,
        le=3600,
        description="Longest one POST /v1/records/parse may take; past it the parse stops "
        "with a 413 naming this limit (a parse whose client has gone stops at once).",
    )
    rate_limit_patience_s: float = Field(
        900.0,
        gt=0,
        description="How long a job waits out continuous rate limiting (429s without a "
        "success in between) before it fails as rate_limit, retryable; a 429 never uses "
        "up a paper's retries.",
    )
    mock_delay_s: float = Field(
        0.0,
        ge=0,
        le=60,
        description="Seconds each paper takes in mock mode (0: instant); to rehearse progress "
        "bars, cancel and resume without a key.",
    )
    allow_unknown_models: bool | None = Field(
        None,
        description="Accept models missing from the capability table. Empty: accepted when "
        "CRYSTALLISE_OPENAI_BASE_URL points at a server other than OpenAI's (local servers, "
        "gateways, Azure deployments), refused against OpenAI.",
    )
    structured_output: StructuredOutput = Field(
        "auto",
        description="How structured answers are asked for: json_schema (OpenAI strict), "
        "json_object (with the schema, llama.cpp), guided_json (vLLM), ollama_format "
        "(Ollama's format), tool_call (a forced function call), prompt (JSON asked for in "
        "the prompt, validated, one repair re-ask); auto: json_schema, then down that list "
        "from the first rejection, remembered per endpoint and model.",
    )
    model_overrides: dict[str, ModelOverride] = Field(
        default_factory=dict,
        description='Per-model capabilities as JSON, e.g. {"llama3.1:8b": {"context_window": '
        '8192, "max_output_tokens": 2048, "supports_n": false, "supports_logprobs": true, '
        '"structured_output": "json_object"}}; fields left out keep the table\'s value or '
        "the default for unknown models.",
    )
    azure_api_version: str = Field(
        "",
        description="Azure OpenAI: the api-version (e.g. 2024-10-21). Set it (with the "
        "resource URL as CRYSTALLISE_OPENAI_BASE_URL, deployment names as models and the key "
        "sent as api-key) to use the SDK's Azure client.",
    )
    retired_model_policy: str = Field(
        "successor",
        pattern="^(successor|reject)$",
        description="A default or configured model past its shutdown date: run on its "
        "successor (successor) or refuse the request (reject).",
    )
    retired_model_fallback_explicit: bool = Field(
        False,
        description="Under the successor policy, also run requests that name a retired model "
        "on its successor (default: such requests get a 400 naming the successor).",
    )
    today: date | None = Field(
        None,
        description="Pretend today is this date (YYYY-MM-DD) for model shutdown checks: "
        "rehearse a shutdown before it happens. Empty: the real UTC date.",
    )
    secret_key: SecretStr = Field(
        SecretStr(""),
        description="Server secret used to encrypt per-request keys at rest.",
    )
    job_queue: str = Field(
        "auto",
        description="auto (PostgreSQL: procrastinate, SQLite: process), process (a job "
        "process beside the API), inprocess (the API's own event loop), procrastinate.",
        pattern="^(auto|process|inprocess|procrastinate)$",
    )
    worker_concurrency: int = Field(
        4, ge=1, description="Jobs one `crystallise worker` runs at once."
    )
    worker_heartbeat_s: float = Field(5.0, gt=0, description="Worker heartbeat interval.")
    worker_stalled_after_s: float = Field(
        20.0, gt=0, description="A job whose worker is silent this long is picked up by another."
    )
    db_retry_s: float = Field(
        60.0,
        ge=0,
        description="How long the job machinery retries a write across a lost database "
        "connection (restart, failover, SQLite busy or full) before failing the job.",
    )
    job_retention_days: int = Field(30, ge=0, description="Purge terminal jobs older; 0 = keep.")
    reuse_retention_days: int = Field(
        0,
        ge=0,
        description="Screening results older than this are not reused by later jobs (their "
        "reuse keys are purged hourly); 0 = reuse for as long as the job is kept.",
    )
    ranking_session_ttl_hours: int = Field(
        168,
        ge=1,
        le=24 * 366,
        description="A prioritised-screening session expires this long after its last use.",
    )
    log_level: str = Field("INFO", description="Root log level.")
    log_json: bool | None = Field(None, description="JSON logs; default: when not on a TTY.")

    @property
    def service_api_keys(self) -> list[str]:
        return [k.strip() for k in self.api_keys.split(",") if k.strip()]

    @property
    def admin_keys(self) -> list[str]:
        return [k.strip() for k in self.admin_api_keys.split(",") if k.strip()]

    @property
    def tenant_keys(self) -> dict[str, str]:
        """Every service key (not admin) and the tenant it belongs to."""
        keys = {key: DEFAULT_TENANT for key in self.service_api_keys}
        for name, tenant in self.tenants.items():
            keys.update({key: name for key in tenant.keys})
        return keys

    @property
    def bind_host(self) -> str:
        """Where `serve` listens: CRYSTALLISE_API_HOST, else loopback unless keys are set."""
        if self.api_host.strip():
            return self.api_host.strip()
        return "0.0.0.0" if self.auth_enabled else "127.0.0.1"

    @property
    def auth_enabled(self) -> bool:
        """False in dev mode: no service key and no tenant configured (every route open)."""
        return bool(self.tenant_keys)

    @property
    def server_openai_key(self) -> str:
        """The fallback key: OPENAI_API_KEY, then CRYSTALLISE_OPENAI_API_KEY (§4.1)."""
        return self.openai_env_api_key.get_secret_value() or self.openai_api_key.get_secret_value()

    @property
    def is_openai_endpoint(self) -> bool:
        """True when calls go to OpenAI itself (no base URL, or api.openai.com)."""
        host = urlsplit(self.openai_base_url.strip()).hostname or ""
        return not self.openai_base_url.strip() or host == "api.openai.com"

    @property
    def unknown_models_allowed(self) -> bool:
        if self.allow_unknown_models is not None:
            return self.allow_unknown_models
        return not self.is_openai_endpoint

    @property
    def is_azure(self) -> bool:
        return bool(self.azure_api_version.strip())

    @property
    def concurrency_ceiling(self) -> int:
        """The most in-flight calls adaptive mode may reach: CRYSTALLISE_MAX_CONCURRENT_REQUESTS
        when it was set (the documented cap holds), else CRYSTALLISE_MAX_ADAPTIVE_CONCURRENCY."""
        if "max_concurrent_requests" in self.model_fields_set:
            return self.max_concurrent_requests
        return self.max_adaptive_concurrency

    @property
    def is_postgres(self) -> bool:
        return self.sqlalchemy_url.startswith("postgresql")

    @property
    def uses_queue(self) -> bool:
        """True when jobs go through the procrastinate queue to `crystallise worker` processes."""
        if self.job_queue == "procrastinate":
            return True
        return self.job_queue == "auto" and self.is_postgres

    @property
    def uses_job_process(self) -> bool:
        """True when `crystallise serve` runs jobs in its own child process (SQLite default)."""
        if self.job_queue == "process":
            return True
        return self.job_queue == "auto" and not self.is_postgres

    @property
    def postgres_conninfo(self) -> str:
        """libpq connection string for procrastinate (psycopg 3)."""
        return self.sqlalchemy_url.replace("postgresql+psycopg://", "postgresql://", 1)

    @property
    def sqlalchemy_url(self) -> str:
        """The SQLAlchemy URL: PostgreSQL via psycopg 3, or the embedded SQLite file."""
        url = self.database_url.strip()
        if not url:
            return f"sqlite:///{(self.data_dir / 'crystallise.db').resolve()}"
        for prefix in ("postgresql://", "postgres://"):
            if url.startswith(prefix):
                return "postgresql+psycopg://" + url[len(prefix) :]
        return url


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Process-wide settings, read once; tests build their own ``Settings``."""
    return Settings()
