"""Mailer settings, env prefix ``MAILER__`` (shared values also from ``TESSERA__``)."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar, Literal

from pydantic import BaseModel, Field, SecretStr, model_validator
from pydantic_settings import SettingsConfigDict

from tessera.common.settings import ServiceSettings

__all__ = ["RecipientLimit", "Settings", "SmtpSettings"]


class SmtpSettings(BaseModel):
    host: str = "127.0.0.1"
    port: int = Field(default=1025, ge=1, le=65535)
    username: str | None = None
    password: SecretStr | None = None
    security: Literal["none", "starttls", "tls"] = "none"
    timeout_s: float = Field(default=15.0, gt=0)


class RecipientLimit(BaseModel):
    """At most ``limit`` emails to one address in ``window_s`` (recovery and sign-in link
    requests must not become a mail bomb); more are recorded as ``limited``, not sent."""

    limit: int = Field(default=10, ge=1)
    window_s: int = Field(default=3600, ge=1)


class Settings(ServiceSettings):
    service_name: ClassVar[str] = "mailer"
    model_config = SettingsConfigDict(
        env_prefix="MAILER__", env_nested_delimiter="__", env_file=".env", extra="ignore"
    )

    driver: Literal["smtp", "console", "file"] = "smtp"
    file_directory: Path = Field(
        default=Path(".run/mail"),
        description="where the file driver writes one .eml file per email",
    )
    smtp: SmtpSettings = SmtpSettings()
    from_address: str = "Tessera <no-reply@tessera.local>"
    public_url: str = Field(
        default="http://localhost:8080", description="base of links put in emails"
    )
    default_locale: str = "en"
    recipient_limit: RecipientLimit = RecipientLimit()
    delivery_lease_s: float = Field(
        default=120.0,
        gt=0,
        description="how long a consumer may be sending one email before another takes it over "
        "(it must outlast an SMTP timeout)",
    )

    @model_validator(mode="after")
    def _no_console_in_production(self) -> Settings:
        if self.environment == "production" and self.driver == "console":
            raise ValueError("driver: the console driver writes links to the log; use smtp")
        return self
