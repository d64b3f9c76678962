"""Typed settings shared by every service.

Each service subclasses :class:`ServiceSettings` with its own env prefix (``AUTH__``,
``MAILER__``...). Nested models use ``__`` (``MAILER__SMTP__PORT``). Values shared by the
whole suite may be given once with the ``TESSERA__`` prefix (``TESSERA__BROKER__URL``); a
service-prefixed variable wins over the shared one. An optional ``.env`` file is read too.
"""

from __future__ import annotations

import ipaddress
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, Field, SecretStr, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)
from sqlalchemy.engine import make_url

__all__ = [
    "BrokerSettings",
    "DatabaseSettings",
    "HttpSettings",
    "JwtSettings",
    "RedisSettings",
    "ServiceSettings",
]

DEV_DATABASE_HOST = "127.0.0.1:5432"
DEV_DATABASE_NAME = "tessera"


class DatabaseSettings(BaseModel):
    """Connection to the service's own schema, as the service's own login role."""

    url: SecretStr = SecretStr("")
    pool_size: int = Field(default=10, ge=1, le=200)
    max_overflow: int = Field(default=10, ge=0, le=200)
    statement_timeout_ms: int = Field(default=30_000, ge=0)

    def async_url(self) -> str:
        """The URL with the asyncpg driver, whatever scheme was configured."""
        url = make_url(self.url.get_secret_value())
        return url.set(drivername="postgresql+asyncpg").render_as_string(hide_password=False)


class BrokerSettings(BaseModel):
    """RabbitMQ connection and topology names."""

    url: SecretStr = SecretStr("amqp://guest:guest@127.0.0.1:5672/")
    exchange: str = "tessera.events"
    unrouted: str = Field(
        default="tessera.unrouted",
        description="alternate exchange of `exchange`, and the queue keeping what it catches",
    )
    queue_prefix: str = ""
    retry_delays_ms: list[int] = Field(default=[1_000, 5_000, 30_000], min_length=0)
    prefetch: int = Field(default=32, ge=1, le=1000)
    delivery_limit: int = Field(
        default=5,
        ge=1,
        le=100,
        description="deliveries of a message that never gets acknowledged (its consumer "
        "crashes on it) before RabbitMQ dead-letters it",
    )
    publish_timeout_s: float = Field(default=10.0, gt=0)
    outbox_relay: bool = Field(
        default=True, description="run the outbox relay in this process (off: another does)"
    )
    outbox_batch_size: int = Field(default=200, ge=1, le=5000)
    outbox_poll_interval_s: float = Field(default=1.0, gt=0)
    outbox_retention_s: float = Field(default=3600.0, ge=0)
    outbox_max_attempts: int = Field(
        default=10, ge=1, description="failed publishes of one row before it is parked"
    )
    outbox_retry_base_s: float = Field(default=1.0, gt=0)
    outbox_retry_max_s: float = Field(default=300.0, gt=0)
    outbox_lease_s: float = Field(
        default=30.0, gt=0, description="how long a claimed row is the claiming relay's"
    )


class RedisSettings(BaseModel):
    url: SecretStr = SecretStr("redis://127.0.0.1:6379/0")
    key_prefix: str = "tessera:"


class JwtSettings(BaseModel):
    """How every service verifies access tokens issued by auth."""

    jwks_url: str = "http://127.0.0.1:8001/auth/.well-known/jwks.json"
    issuer: str = "tessera-auth"
    audience: str = "tessera"
    algorithms: list[Literal["EdDSA", "ES256"]] = ["EdDSA", "ES256"]
    jwks_cache_s: float = Field(default=300.0, ge=0)
    jwks_min_refetch_s: float = Field(default=5.0, ge=0)
    leeway_s: float = Field(default=5.0, ge=0)
    revocation_fail_open: bool = Field(
        default=False,
        description="accept tokens when Redis (the deny-list) is down instead of answering 503",
    )


class HttpSettings(BaseModel):
    cors_origins: list[str] = []
    max_body_bytes: int = Field(default=1_048_576, ge=1024)
    public_docs: bool = True
    trusted_proxies: list[str] = Field(
        default=["127.0.0.1", "::1"],
        description="addresses or networks (CIDR) of the proxies (the gateway) whose "
        "X-Forwarded-For is believed; every other peer is the client itself",
    )

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, values: list[str]) -> list[str]:
        for value in values:
            try:
                ipaddress.ip_network(value.strip(), strict=False)
            except ValueError as exc:
                raise ValueError(f"not an address or network: {value!r}") from exc
        return values


class ServiceSettings(BaseSettings):
    """Base for every service's settings; subclasses set ``service_name`` and the prefix."""

    service_name: ClassVar[str] = "tessera"
    model_config = SettingsConfigDict(
        env_nested_delimiter="__",
        env_file=".env",
        extra="ignore",
        validate_default=True,
    )

    environment: Literal["development", "test", "production"] = "development"
    log_level: str = "INFO"
    log_format: Literal["json", "console"] = "json"
    database: DatabaseSettings = DatabaseSettings()
    broker: BrokerSettings = BrokerSettings()
    redis: RedisSettings = RedisSettings()
    jwt: JwtSettings = JwtSettings()
    http: HttpSettings = HttpSettings()
    admin_database_url: SecretStr = SecretStr("postgresql://postgres@127.0.0.1:5432/postgres")

    @property
    def schema_name(self) -> str:
        """The Postgres schema this service owns (its name)."""
        return self.service_name

    @property
    def role_name(self) -> str:
        return f"tessera_{self.service_name}"

    @model_validator(mode="after")
    def _default_database_url(self) -> ServiceSettings:
        if not self.database.url.get_secret_value():
            name = self.service_name
            self.database.url = SecretStr(
                f"postgresql+asyncpg://tessera_{name}:tessera_{name}_dev"
                f"@{DEV_DATABASE_HOST}/{DEV_DATABASE_NAME}"
            )
        if self.environment == "production":
            self._refuse_dev_secrets()
        return self

    def _refuse_dev_secrets(self) -> None:
        """Fail fast when production would run with a password meant for a laptop."""
        password = make_url(self.database.url.get_secret_value()).password or ""
        if password.endswith("_dev") or not password:
            raise ValueError("database.url: set a real password for production")
        broker = self.broker.url.get_secret_value()
        if "guest:guest@" in broker:
            raise ValueError("broker.url: the guest account is refused in production")

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        shared = EnvSettingsSource(settings_cls, env_prefix="TESSERA__", env_nested_delimiter="__")
        return (init_settings, env_settings, dotenv_settings, shared, file_secret_settings)

    def public_dump(self) -> dict[str, Any]:
        """Settings safe to log: secrets come out masked."""
        return self.model_dump(mode="json")
