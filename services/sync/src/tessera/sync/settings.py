"""sync settings, env prefix ``SYNC__`` (shared values also from ``TESSERA__``)."""

from __future__ import annotations

from typing import ClassVar

from pydantic_settings import SettingsConfigDict

from tessera.common.settings import ServiceSettings

__all__ = ["Settings"]


class Settings(ServiceSettings):
    service_name: ClassVar[str] = "sync"
    model_config = SettingsConfigDict(
        env_prefix="SYNC__", env_nested_delimiter="__", env_file=".env", extra="ignore"
    )
