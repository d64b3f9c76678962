"""Auth settings, env prefix ``AUTH__`` (shared values also from ``TESSERA__``)."""

from __future__ import annotations

import base64
import hashlib
from typing import ClassVar

from pydantic import BaseModel, Field, SecretStr, model_validator
from pydantic_settings import SettingsConfigDict

from tessera.common.ratelimit import Limit
from tessera.common.settings import ServiceSettings

__all__ = ["Argon2Settings", "Lockout", "RateLimits", "Settings"]

_DEV_KEK = "tessera-auth-dev-key-encryption-key"


class Argon2Settings(BaseModel):
    """argon2id cost; changing it rehashes each password at its next login."""

    time_cost: int = Field(default=3, ge=1, le=20)
    memory_cost_kib: int = Field(default=65_536, ge=8_192, le=1_048_576)
    parallelism: int = Field(default=4, ge=1, le=16)


class RateLimits(BaseModel):
    """Per client address and per account; ``enabled=false`` turns limits and lockout off."""

    enabled: bool = True
    login_per_ip: Limit = Limit(limit=30, window_s=60)
    login_per_account: Limit = Limit(limit=10, window_s=300)
    register_per_ip: Limit = Limit(limit=10, window_s=3600)
    recover_per_ip: Limit = Limit(limit=10, window_s=3600)
    recover_per_account: Limit = Limit(limit=3, window_s=900)
    login_link_per_ip: Limit = Limit(limit=10, window_s=3600)
    login_link_per_account: Limit = Limit(limit=3, window_s=900)
    verify_resend_per_ip: Limit = Limit(limit=10, window_s=3600)
    verify_resend_per_account: Limit = Limit(limit=3, window_s=900)


class Lockout(BaseModel):
    """Progressive lockout after consecutive wrong passwords."""

    failures: int = Field(default=5, ge=1)
    window_s: int = Field(default=900, ge=1)
    base_lock_s: int = Field(default=60, ge=1)
    max_lock_s: int = Field(default=3600, ge=1)


class Settings(ServiceSettings):
    service_name: ClassVar[str] = "auth"
    model_config = SettingsConfigDict(
        env_prefix="AUTH__", env_nested_delimiter="__", env_file=".env", extra="ignore"
    )

    access_token_ttl_s: int = Field(default=900, ge=60, le=86_400)
    refresh_token_ttl_s: int = Field(default=30 * 86_400, ge=3600)
    verification_token_ttl_s: int = Field(default=24 * 3600, ge=300)
    password_reset_ttl_s: int = Field(default=900, ge=60, le=86_400)
    login_link_ttl_s: int = Field(default=900, ge=60, le=86_400)
    key_encryption_key: SecretStr = Field(
        default=SecretStr(""),
        description="Fernet key (urlsafe base64, 32 bytes) encrypting signing keys at rest",
    )
    signing_algorithm: str = Field(default="EdDSA", pattern="^(EdDSA|ES256)$")
    argon2: Argon2Settings = Argon2Settings()
    password_min_length: int = Field(default=10, ge=8, le=128)
    rate_limits: RateLimits = RateLimits()
    lockout: Lockout = Lockout()

    @model_validator(mode="after")
    def _key_encryption_key(self) -> Settings:
        if not self.key_encryption_key.get_secret_value():
            if self.environment == "production":
                raise ValueError("key_encryption_key: required in production")
            digest = hashlib.sha256(_DEV_KEK.encode()).digest()
            self.key_encryption_key = SecretStr(base64.urlsafe_b64encode(digest).decode())
        return self
