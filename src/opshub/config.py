"""Every setting opshub reads, in one place: environment variables prefixed ``OPSHUB_``."""

from __future__ import annotations

import os
from decimal import Decimal
from functools import lru_cache
from ipaddress import IPv4Network, IPv6Network
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import BaseModel, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

LOCAL_DATA_DIR = Path(".opshub")
CREW_RSS_MB = 2.6  # measured with the fake model: bench/results/runtime-every_core*.json


class ModelPrice(BaseModel):
    """What a million tokens of one model cost (``opshub.llm.prices`` holds the known ones)."""

    input: float = Field(ge=0, description="USD per 1M input tokens")
    output: float = Field(ge=0, description="USD per 1M output tokens")
    cached_input: float = Field(ge=0, description="USD per 1M cached input tokens")


def default_data_dir() -> Path:
    """``./.opshub`` where one exists (hubs started there keep their data and keys), else the
    user's data directory, so every command finds the same hub from any directory."""
    if LOCAL_DATA_DIR.is_dir():
        return LOCAL_DATA_DIR.absolute()
    # XDG: a relative XDG_DATA_HOME is invalid and is ignored.
    xdg = Path(os.environ.get("XDG_DATA_HOME") or "")
    return (xdg if xdg.is_absolute() else Path.home() / ".local" / "share") / "opshub"


class RequestRate(BaseModel):
    """A tenant's API token bucket: ``per_second`` sustained, ``burst`` at once."""

    per_second: float = Field(gt=0)
    burst: int = Field(ge=1)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="OPSHUB_", extra="ignore")

    data_dir: Path = Field(
        default_factory=lambda: default_data_dir(),
        description="Embedded PostgreSQL data, generated secrets and local state. Unset: "
        "./.opshub where it exists, else $XDG_DATA_HOME/opshub (~/.local/share/opshub).",
    )
    database_url: str | None = Field(
        default=None,
        description="Owner connection (migrations, platform administration). "
        "Unset: an embedded PostgreSQL 16 + pgvector is started in data_dir.",
    )
    database_app_url: str | None = Field(
        default=None,
        description="The API's connection, as a role without BYPASSRLS. Unset: database_url with "
        "the user swapped for database_app_role.",
    )
    database_app_role: str = Field(
        default="opshub_app", description="Role that tenant requests run as (RLS applies)."
    )
    database_pool_size: int = Field(default=20, ge=1, le=500)
    redis_url: str | None = Field(
        default=None,
        description="Redis for rate limits (and later live events). Unset: in-process.",
    )
    redis_timeout_seconds: float = Field(
        default=2.0,
        gt=0,
        description="Connecting to Redis and waiting for each answer; past it, the request "
        "goes on without Redis (in-process limits, events from the database).",
    )
    vault_addr: str | None = Field(
        default=None,
        description="Vault/OpenBao address. Set: tenant secrets live in Vault KV v2. "
        "Unset: encrypted rows in PostgreSQL.",
    )
    vault_token: SecretStr | None = Field(default=None, description="Vault token auth.")
    vault_role_id: str | None = Field(default=None, description="Vault AppRole role id.")
    vault_secret_id: SecretStr | None = Field(default=None, description="Vault AppRole secret id.")
    vault_mount: str = Field(default="secret", description="KV v2 mount.")
    vault_prefix: str = Field(default="tenants", description="Path prefix of tenant secrets.")
    master_key: SecretStr | None = Field(
        default=None,
        description="Master key(s) for the embedded backend, 32 bytes hex or base64, "
        "comma-separated, current first. Unset: data_dir/master_keys, created 0600.",
    )
    platform_openai_api_key: SecretStr | None = Field(
        default=None, description="The platform's OpenAI key, for plans that allow it."
    )
    platform_anthropic_api_key: SecretStr | None = Field(
        default=None, description="The platform's Anthropic key, for plans that allow it."
    )
    platform_key_plans: list[str] = Field(
        default=["pro", "enterprise"],
        description="Plans whose tenants may use platform keys when they have none of their own.",
    )
    openai_base_url: str = "https://api.openai.com/v1"
    anthropic_base_url: str = "https://api.anthropic.com"
    google_oauth_url: str = "https://oauth2.googleapis.com/token"
    google_ads_api_url: str = "https://googleads.googleapis.com/v26"
    meta_graph_url: str = "https://graph.facebook.com/v26.0"
    linkedin_api_url: str = "https://api.linkedin.com/rest"
    linkedin_version: str = Field(default="202610", pattern=r"^\d{6}$")
    amazon_lwa_url: str = "https://api.amazon.com/auth/o2/token"
    amazon_cognito_urls: dict[str, str] = Field(
        default={
            "2.1": "https://creatorsapi.auth.us-east-1.amazoncognito.com/oauth2/token",
            "2.2": "https://creatorsapi.auth.eu-south-2.amazoncognito.com/oauth2/token",
        },
        description="Amazon Creators 2.x token endpoint per credential version (region).",
    )
    amazon_creators_api_url: str = "https://creatorsapi.amazon/catalog/v1"
    credential_cache_seconds: float = Field(default=30.0, ge=0)
    allow_internal_urls: bool = Field(
        default=False,
        description="Let tenants' openai_compatible and saleor URLs name any loopback, private "
        "or link-local address (development; prefer allowed_private_networks).",
    )
    allowed_private_networks: Annotated[list[IPv4Network | IPv6Network], NoDecode] = Field(
        default_factory=list,
        description="Private networks (CIDRs, comma-separated) whose addresses tenants' "
        "openai_compatible and saleor URLs may name: a GPU box, Ollama on the LAN.",
    )
    credential_check_minutes: float = Field(
        default=60.0, ge=0, description="Health sweep of every stored credential; 0 turns it off."
    )
    credential_check_concurrency: int = Field(default=20, ge=1, le=500)
    tenant_credential_checks: int = Field(
        default=4, ge=1, description="Credential checks one tenant may have in flight at once."
    )
    credential_check_jitter_seconds: float = Field(default=5.0, ge=0)
    llm_timeout_seconds: float = Field(default=60.0, gt=0, description="Per model call.")
    llm_max_retries: int = Field(
        default=3,
        ge=0,
        le=10,
        description="Retries on 429/5xx/529, honouring Retry-After; 401/403 never retry.",
    )
    byok_run_fee_usd: Decimal = Field(
        default=Decimal(0), ge=0, description="Platform fee per run on a tenant's own key."
    )
    model_prices: dict[str, ModelPrice] = Field(
        default_factory=dict,
        description='Price overrides, JSON: {"model": {"input": .., "output": .., '
        '"cached_input": ..}} in USD per 1M tokens.',
    )
    default_models: dict[str, str] = Field(
        default={
            "openai": "gpt-4.1-mini",
            "anthropic": "claude-haiku-4-5",
            "openai_compatible": "default",
        },
        description="The model crews use per provider, JSON; the first provider the tenant has "
        "a key for (BYOK or platform), in this order, pays for the run.",
    )
    stream_tokens: bool = Field(default=True, description="Stream model output as token events.")
    worker_concurrency: int | None = Field(
        default=None,
        ge=1,
        le=2000,
        description="Crews per worker process. Unset: as many as its share of memory holds "
        "(worker_memory_mb / worker_crew_rss_mb).",
    )
    worker_crew_rss_mb: float = Field(
        default=CREW_RSS_MB,
        gt=0,
        description="Resident memory one running crew adds (bench/runtime.py, every_core).",
    )
    worker_memory_mb: int | None = Field(
        default=None,
        ge=64,
        description="Memory one worker process may fill with crews. Unset: half the memory "
        "available at start, split between the hub's processes.",
    )
    processes: int | None = Field(
        default=None,
        ge=1,
        le=256,
        description="Processes of `serve`, `worker` and `api` under one supervisor (their "
        "--processes / --workers win). Unset: one per core.",
    )
    worker_nice: int = Field(
        default=5,
        ge=0,
        le=19,
        description="How much a worker process lowers its CPU priority (nice): on a machine it "
        "shares with the API and PostgreSQL, requests and live events go before crews. 0: none.",
    )
    worker_threads: int = Field(
        default=256,
        ge=8,
        le=4096,
        description="Threads for CrewAI's synchronous steps (the default pool has 6 on 2 cores); "
        "a worker takes at least one for each crew it may run, plus 16.",
    )
    worker_shutdown_grace_seconds: float = Field(
        default=30.0, ge=0, description="On SIGTERM, how long running crews get to finish."
    )
    task_lease_seconds: float = Field(
        default=30.0, gt=0, description="A worker silent this long has died; its tasks rerun."
    )
    task_retry_backoff_seconds: float = Field(
        default=2.0, ge=0, description="First retry delay; doubles per attempt (max 300 s)."
    )
    tenant_max_running_tasks: int = Field(
        default=16, ge=1, description="Running tasks per tenant, unless the tenant has its own."
    )
    action_lease_seconds: float = Field(
        default=60.0,
        gt=0,
        description="An action executor silent this long has died; its in-flight actions run "
        "again elsewhere (executors are safe to re-run).",
    )
    action_max_attempts: int = Field(
        default=5, ge=1, le=50, description="Tries per approved action before it fails."
    )
    action_retry_backoff_seconds: float = Field(
        default=5.0,
        ge=0,
        description="First delay after a rate limit or outage (unless the service names one); "
        "doubles per attempt (max 300 s).",
    )
    action_concurrency: int = Field(
        default=8, ge=1, le=200, description="Actions one worker executes at once."
    )
    thread_history_messages: int = Field(default=20, ge=0, le=200)
    webhook_max_attempts: int = Field(default=8, ge=1, le=30)
    webhook_timeout_seconds: float = Field(default=10.0, gt=0)
    memory_index_rows: int = Field(
        default=1_000,
        ge=1,
        description="Live memories at which a tenant gets its own HNSW index (below: exact).",
    )
    memory_ef_search: int = Field(
        default=100, ge=10, le=1000, description="HNSW candidates a memory search starts from."
    )
    memory_context_tokens: int = Field(
        default=600, ge=0, description="Budget of recalled memories put before a crew run (0: off)."
    )
    memory_extraction: bool = Field(
        default=True,
        description="After each run, one model call picks the facts worth keeping; a tenant may "
        "choose otherwise (PATCH /v1/memories/settings).",
    )
    model_cache_dir: Path = Field(
        default_factory=lambda: (
            Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "opshub"
        ),
        description="Where the local embedding model's ONNX export is kept (made on first use).",
    )
    memory_index_sweep_seconds: float = Field(
        default=60.0, gt=0, description="How often the scheduler builds due memory indexes."
    )
    jwt_secret: SecretStr | None = Field(
        default=None,
        description="HS256 signing key for session tokens. Unset: generated once into data_dir.",
    )
    jwt_ttl_seconds: int = Field(default=3600, ge=60, le=7 * 24 * 3600)
    admin_token: SecretStr | None = Field(
        default=None, description="Bearer token for /v1/admin/* (platform administration)."
    )
    login_attempts_per_minute: int = Field(default=10, ge=1, description="Per e-mail.")
    login_attempts_per_minute_per_address: int = Field(
        default=60, ge=1, description="Per client address, whatever the e-mails."
    )
    tenant_requests_per_second: float = Field(
        default=50.0, gt=0, description="API requests a tenant may make per second, sustained."
    )
    tenant_request_burst: int = Field(
        default=100, ge=1, description="API requests a tenant may make at once above that rate."
    )
    credential_requests_in_flight: int = Field(
        default=2,
        ge=1,
        description="Requests one API key or session may have using the database at once; "
        "more wait their turn behind them, not ahead of other tenants.",
    )
    tenant_request_limits_by_plan: dict[str, RequestRate] = Field(
        default={
            "pro": RequestRate(per_second=100, burst=200),
            "enterprise": RequestRate(per_second=250, burst=500),
        },
        description='Per-plan overrides of the two above, JSON: {"plan": {"per_second": .., '
        '"burst": ..}}; a plan not named here gets them.',
    )
    password_check_concurrency: int = Field(
        default=2,
        ge=1,
        le=64,
        description="Password hashes verified at once (argon2 is CPU-bound); more logins queue.",
    )
    console_session_ttl_seconds: int = Field(
        default=12 * 3600, ge=60, description="How long a console sign-in lasts."
    )
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    log_level: str = "INFO"
    log_json: bool | None = Field(
        default=None,
        description="JSON log lines (true), readable ones (false); unset: readable in a terminal.",
    )
    metrics_port: int | None = Field(
        default=None,
        ge=1,
        le=65535,
        description="Worker and scheduler: serve Prometheus metrics on this port (the API serves "
        "its own at /metrics). Unset: none.",
    )
    import_max_rows: int = Field(default=10_000, ge=1)
    max_request_body_bytes: int = Field(
        default=10 * 1024 * 1024,
        ge=1024,
        description="Larger request bodies are refused with 413 before they are parsed.",
    )

    @field_validator("data_dir")
    @classmethod
    def _absolute(cls, value: Path) -> Path:
        return value.expanduser().absolute()

    def data_dir_origin(self) -> str:
        """Why this data directory: what a command says before it uses it."""
        if "data_dir" in self.model_fields_set:
            return "OPSHUB_DATA_DIR"
        if self.data_dir == LOCAL_DATA_DIR.absolute():
            return "./.opshub exists here"
        return "the user data directory; set OPSHUB_DATA_DIR to use another"

    @field_validator("allowed_private_networks", mode="before")
    @classmethod
    def _comma_separated(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @property
    def embedded(self) -> bool:
        return self.database_url is None

    @property
    def service_origins(self) -> frozenset[str]:
        """Where the services the operator configured answer (model providers, ad platforms,
        Amazon): trusted by the outbound guard, which is for the addresses tenants give."""
        urls = [
            self.openai_base_url,
            self.anthropic_base_url,
            self.google_oauth_url,
            self.google_ads_api_url,
            self.meta_graph_url,
            self.linkedin_api_url,
            self.amazon_lwa_url,
            self.amazon_creators_api_url,
            *self.amazon_cognito_urls.values(),
        ]
        return frozenset(origin(url) for url in urls)


@lru_cache
def get_settings() -> Settings:
    return Settings()


def origin(url: str) -> str:
    """``scheme://host:port`` of ``url``, the port spelled out."""
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return f"{parts.scheme}://{(parts.hostname or '').lower()}:{port}"
