"""Auth settings, env prefix ``AUTH__`` (shared values also from ``TESSERA__``)."""

from __future__ import annotations

import base64
import hashlib
from typing import ClassVar

from pydantic import BaseModel, Field, SecretStr, model_validator
from pydantic_settings import SettingsConfigDict

from tessera.common.settings import ServiceSettings

__all__ = ["Argon2Settings", "Settings"]

_DEV_KEK = "tessera-auth-dev-key-encryption-key"


class Argon2Settings(BaseModel):
    """argon2id cost; changing it rehashes each password at its next login."""

    time_cost: int = Field(default=3, ge=1, le=20)
    memory_cost_kib: int = Field(default=65_536, ge=8_192, le=1_048_576)
    parallelism: int = Field(default=4, ge=1, le=16)


class Settings(ServiceSettings):
    service_name: ClassVar[str] = "auth"
    model_config = SettingsConfigDict(
        env_prefix="AUTH__", env_nested_delimiter="__", env_file=".env", extra="ignore"
    )

    access_token_ttl_s: int = Field(default=900, ge=60, le=86_400)
    refresh_token_ttl_s: int = Field(default=30 * 86_400, ge=3600)
    verification_token_ttl_s: int = Field(default=24 * 3600, ge=300)
    key_encryption_key: SecretStr = Field(
        default=SecretStr(""),
        description="Fernet key (urlsafe base64, 32 bytes) encrypting signing keys at rest",
    )
    signing_algorithm: str = Field(default="EdDSA", pattern="^(EdDSA|ES256)$")
    argon2: Argon2Settings = Argon2Settings()
    password_min_length: int = Field(default=10, ge=8, le=128)

    @model_validator(mode="after")
    def _key_encryption_key(self) -> Settings:
        if not self.key_encryption_key.get_secret_value():
            if self.environment == "production":
                raise ValueError("key_encryption_key: required in production")
            digest = hashlib.sha256(_DEV_KEK.encode()).digest()
            self.key_encryption_key = SecretStr(base64.urlsafe_b64encode(digest).decode())
        return self
