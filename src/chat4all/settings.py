"""Settings, from `CHAT4ALL_*` environment variables (and a `.env` file when present)."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from chat4all.domain.webhooks import DEFAULT_RETRY_SCHEDULE


class Environment(StrEnum):
    DEVELOPMENT = "development"
    PRODUCTION = "production"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CHAT4ALL_", env_file=".env", extra="ignore")

    environment: Environment = Environment.DEVELOPMENT
    host: str = "127.0.0.1"
    port: int = Field(8080, ge=1, le=65535)
    data_dir: Path = Path("data")
    # The web client's build output (`make web`), served at `/`.
    web_dir: Path = Path("web/dist/web/browser")

    # The metadata store. Unset: a SQLite file in data_dir (embedded), or the local
    # PostgreSQL that scripts/infra/ starts (cluster).
    metadata_url: str | None = None

    # Cluster profile: the real servers, and how this process names itself among its peers.
    mongo_url: str = "mongodb://127.0.0.1:27017/"
    mongo_database: str = "chat4all"
    # Per process. FerretDB v1 hangs once as many updates run at once as it has PostgreSQL
    # connections (scripts/infra gives it 250): keep the sum over processes below that.
    mongo_max_pool_size: int = Field(8, ge=1)
    kafka_bootstrap_servers: str = "127.0.0.1:9092"
    kafka_partitions: int = Field(12, ge=1)
    kafka_replication_factor: int = Field(1, ge=1)
    redis_url: str = "redis://127.0.0.1:6379/0"
    etcd_url: str = "http://127.0.0.1:2379"
    # Prefixes every topic, consumer group, Redis key, etcd key and the database names, so
    # that several platforms (or test runs) can share one set of servers.
    namespace: str = Field("chat4all", pattern=r"^[a-z][a-z0-9_]{0,39}$")
    advertise_host: str = "127.0.0.1"
    grpc_port: int = Field(50051, ge=0, le=65535)
    startup_timeout_seconds: float = Field(60.0, ge=0)

    # Auth. Outside development a secret must be given; in development one is generated
    # once and kept in the data folder so tokens survive a restart.
    jwt_secret: str | None = Field(None, min_length=32)
    access_token_ttl_seconds: int = Field(900, ge=30)
    refresh_token_ttl_seconds: int = Field(30 * 24 * 3600, ge=60)
    password_hash_time_cost: int = Field(2, ge=1)
    password_hash_memory_kib: int = Field(19 * 1024, ge=1024)

    # Limits.
    max_group_size: int = Field(1000, ge=2)
    max_text_length: int = Field(4096, ge=1)
    max_request_body_bytes: int = Field(1 << 20, ge=1024)
    message_ttl_days: int = Field(0, ge=0, description="0 keeps messages forever")
    # Sends per user: a token bucket of `send_burst` refilled at `send_rate_per_second`.
    send_rate_per_second: float = Field(20.0, ge=0, description="0: no limit")
    send_burst: int = Field(100, ge=1)

    # Files (docs/files.md). Uploads are tus 1.0.0 at /v1/uploads; downloads are signed links.
    files_max_size_bytes: int = Field(2 << 30, ge=0, le=2 << 30)
    files_quota_bytes: int = Field(20 << 30, ge=0, description="per user: open + completed")
    files_upload_expiry_hours: float = Field(24.0, gt=0, description="after the last chunk")
    files_link_ttl_seconds: int = Field(3600, ge=1)
    # Unset: derived from the JWT secret, so one secret configures both.
    files_signing_secret: str | None = Field(None, min_length=32)
    # New uploads per user: a token bucket of `upload_burst` refilled at this rate.
    upload_rate_per_second: float = Field(1.0, ge=0, description="0: no limit")
    upload_burst: int = Field(20, ge=1)
    # Prefix of download links handed to others (connectors): e.g. https://chat.example.com
    public_base_url: str = ""
    # Cluster profile: file bytes on S3 (MinIO). Parts of at least 5 MiB (S3's minimum).
    s3_endpoint_url: str = "http://127.0.0.1:9000"
    s3_bucket: str = "chat4all-files"
    s3_access_key: str = "chat4all"
    s3_secret_key: str = "chat4all-secret"
    s3_part_size_bytes: int = Field(8 << 20, ge=5 << 20, le=5 << 30)
    # Client webhooks (docs/webhooks.md). Private URLs: development and tests only (SSRF).
    webhook_allow_private_urls: bool = False
    # Seconds between tries after the first fails; the last failure makes it a dead letter.
    webhook_retry_schedule_seconds: tuple[Annotated[float, Field(ge=0)], ...] = Field(
        DEFAULT_RETRY_SCHEDULE, min_length=1
    )
    webhook_timeout_seconds: float = Field(10.0, gt=0, le=60)
    webhook_max_concurrency_per_endpoint: int = Field(4, ge=1)
    webhook_secret_overlap_hours: float = Field(24.0, ge=0, le=168)
    # Real time: how long a typing indicator lasts unless renewed.
    typing_seconds: int = Field(6, ge=1, le=60)

    # Observability (docs/observability.md). Processes without HTTP (workers, gRPC services)
    # serve /metrics on `metrics_port` when it is set; gateways serve it on their HTTP port.
    metrics_port: int | None = Field(None, ge=1, le=65535)
    log_format: Literal["json", "text"] = "json"
    # External channels (docs/connectors.md): retries per delivery, exponential backoff with
    # jitter from the first delay up to the cap; the circuit breaker of a channel account opens
    # after that many failures in a row and lets a probe through after the reset time.
    delivery_attempts: int = Field(8, ge=1)
    delivery_first_retry_seconds: float = Field(0.5, ge=0)
    delivery_max_retry_seconds: float = Field(60.0, ge=0)
    breaker_failures: int = Field(5, ge=1)
    breaker_reset_seconds: float = Field(5.0, ge=0)
    # Jobs held by the delivery worker at once (waiting in their conversation's lane).
    delivery_max_in_flight: int = Field(10_000, ge=1)
    # Inbound webhooks are held this long so that a contact's messages can be put in the
    # platform's order when webhooks arrive out of it.
    inbound_reorder_seconds: float = Field(0.5, ge=0)
    connector_timeout_seconds: float = Field(15.0, gt=0)
    # Bearer token of the operators' API (/v1/admin/...: dead letters). Unset: that API is off.
    admin_token: str | None = Field(None, min_length=16)

    # Embedded event log.
    bus_partitions: int = Field(4, ge=1)
    bus_retention_hours: int = Field(72, ge=1)

    @model_validator(mode="after")
    def _secrets_outside_development(self) -> Settings:
        if self.environment is Environment.PRODUCTION and not self.jwt_secret:
            raise ValueError("CHAT4ALL_JWT_SECRET must be set when CHAT4ALL_ENVIRONMENT=production")
        return self

    def resolved_metadata_url(self) -> str:
        return self.metadata_url or f"sqlite+aiosqlite:///{self.data_dir / 'metadata.db'}"

    def cluster_metadata_url(self) -> str:
        return self.metadata_url or "postgresql+asyncpg://chat4all:chat4all@127.0.0.1:5433/chat4all"

    def resolved_files_signing_secret(self) -> bytes:
        """The download links' HMAC key: the configured one, or one derived from the JWT
        secret (a different key, so a link signature is never a token signature)."""
        if self.files_signing_secret:
            return self.files_signing_secret.encode()
        return hmac.new(
            self.resolved_jwt_secret().encode(), b"chat4all download links", hashlib.sha256
        ).digest()

    def resolved_jwt_secret(self) -> str:
        """The configured secret, or the development one kept in the data folder."""
        if self.jwt_secret:
            return self.jwt_secret
        path = self.data_dir / "jwt-secret"
        if not path.exists():
            self.data_dir.mkdir(parents=True, exist_ok=True)
            path.write_text(secrets.token_urlsafe(48))
            path.chmod(0o600)
        return path.read_text().strip()
