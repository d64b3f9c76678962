"""applets settings, env prefix ``APPLETS__`` (shared values also from ``TESSERA__``)."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from tessera.common.settings import HttpSettings, ServiceSettings

__all__ = ["Settings"]


class Settings(ServiceSettings):
    service_name: ClassVar[str] = "applets"
    model_config = SettingsConfigDict(
        env_prefix="APPLETS__", env_nested_delimiter="__", env_file=".env", extra="ignore"
    )

    http: HttpSettings = HttpSettings(max_body_bytes=16 * 1024 * 1024)
    """an applet document of hundreds of items, or a ReproSchema bundle, is megabytes"""
    invitation_ttl_s: int = Field(
        default=7 * 86_400, ge=60, le=90 * 86_400, description="how long an invitation link works"
    )
    transfer_ttl_s: int = Field(
        default=7 * 86_400, ge=60, le=90 * 86_400, description="how long a transfer offer works"
    )
