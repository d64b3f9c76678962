"""applets settings, env prefix ``APPLETS__`` (shared values also from ``TESSERA__``)."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from tessera.common.settings import HttpSettings, ServiceSettings

__all__ = ["Settings"]


class AppletsHttpSettings(HttpSettings):
    """The shared HTTP settings with a larger body limit as the field's own default: a
    default instance (``HttpSettings(max_body_bytes=...)``) is replaced whole as soon as any
    ``HTTP__`` value is set (``TESSERA__HTTP__TRUSTED_PROXIES`` in every deployment)."""

    max_body_bytes: int = Field(default=16 * 1024 * 1024, ge=1024)
    """an applet document of hundreds of items, or a ReproSchema bundle, is megabytes"""


class Settings(ServiceSettings):
    service_name: ClassVar[str] = "applets"
    model_config = SettingsConfigDict(
        env_prefix="APPLETS__", env_nested_delimiter="__", env_file=".env", extra="ignore"
    )

    http: AppletsHttpSettings = AppletsHttpSettings()
    invitation_ttl_s: int = Field(
        default=7 * 86_400, ge=60, le=90 * 86_400, description="how long an invitation link works"
    )
    transfer_ttl_s: int = Field(
        default=7 * 86_400, ge=60, le=90 * 86_400, description="how long a transfer offer works"
    )
