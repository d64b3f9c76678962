"""sync settings, env prefix ``SYNC__`` (shared values also from ``TESSERA__``)."""

from __future__ import annotations

from typing import ClassVar, Literal
from uuid import UUID

from pydantic import BaseModel, Field, SecretStr, model_validator
from pydantic_settings import SettingsConfigDict

from tessera.common.settings import HttpSettings, ServiceSettings
from tessera.sync.viewer import MispRole

__all__ = ["RoleSettings", "Settings"]

DEV_SERVER_KEY = "dev-only-server-key-change-me-in-production"


class RoleSettings(BaseModel):
    """Which MISP role a user has: by what they are in their organisation, with overrides."""

    superadmin: MispRole = MispRole.admin
    organisation_admin: MispRole = MispRole.org_admin
    member: MispRole = MispRole.user
    organisations: dict[UUID, dict[Literal["admin", "member"], MispRole]] = Field(
        default_factory=dict, description="per organisation: its admins' and members' role"
    )
    users: dict[UUID, MispRole] = Field(
        default_factory=dict, description="per user (a remote server's sync account, say)"
    )


class SyncHttpSettings(HttpSettings):
    """The shared HTTP settings with a larger body limit as the field's own default: a
    default instance (``HttpSettings(max_body_bytes=...)``) is replaced whole as soon as any
    ``HTTP__`` value is set (``TESSERA__HTTP__TRUSTED_PROXIES`` in every deployment)."""

    max_body_bytes: int = Field(default=64 * 1024 * 1024, ge=1024)
    """MISP events reach tens of megabytes (150,000 attributes)"""


class Settings(ServiceSettings):
    service_name: ClassVar[str] = "sync"
    model_config = SettingsConfigDict(
        env_prefix="SYNC__", env_nested_delimiter="__", env_file=".env", extra="ignore"
    )

    http: SyncHttpSettings = SyncHttpSettings()
    roles: RoleSettings = RoleSettings()
    server_key: SecretStr = Field(
        default=SecretStr(DEV_SERVER_KEY),
        description="encrypts remote servers' API keys at rest (any string; set in production)",
    )
    signing_key: SecretStr | None = Field(
        default=None,
        description="the armored OpenPGP secret key (no passphrase) that signs protected "
        "events; unset: one is made and stored sealed with server_key",
    )
    misp_version: str = Field(
        default="2.5.20", description="the MISP version this service answers as (getVersion)"
    )
    pymisp_recommended_version: str = "2.5.34.4"
    stream_events_over_bytes: int = Field(
        default=4 * 1024 * 1024,
        ge=64 * 1024,
        description="a pulled event larger than this is spooled to disk and written in batches",
    )
    pull_batch_size: int = Field(default=2000, ge=100, le=50_000)
    host_org_uuid: UUID | None = Field(
        default=None,
        description=(
            "the organisation running this instance (MISP's MISP.host_org_id): a server may be "
            "`internal` (data keeps its distribution levels) only when it links this "
            "organisation to itself; unset, no server is internal"
        ),
    )
    feeds_check_every_s: float = Field(
        default=60.0,
        ge=0,
        description="how often each replica starts the fetches of feeds that are due (0: never)",
    )
    feed_export_public: bool = Field(
        default=False,
        description="this instance's feed (/sync/feed/) without a key: published events of "
        "distribution 3 to anyone who reaches it",
    )

    @model_validator(mode="after")
    def _server_key_in_production(self) -> Settings:
        if self.environment == "production" and (
            self.server_key.get_secret_value() == DEV_SERVER_KEY
            or len(self.server_key.get_secret_value()) < 32
        ):
            raise ValueError("server_key: set a secret of 32 characters or more for production")
        return self
