"""The HTTP contract of auth: request and response models (never the table models)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, EmailStr, Field, field_validator

from tessera.common.pagination import Page

__all__ = [
    "AccountDeleteIn",
    "EmailIn",
    "LoginIn",
    "LogoutIn",
    "PasswordChangeIn",
    "PasswordResetIn",
    "RefreshIn",
    "RegisterIn",
    "SessionPublic",
    "SessionsPage",
    "TokenIn",
    "TokenOut",
    "UserPublic",
    "UserUpdate",
]


class RegisterIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    email: EmailStr = Field(max_length=320)
    password: str = Field(min_length=1, max_length=256, repr=False)
    full_name: str = Field(min_length=1, max_length=200)
    locale: str = Field(default="en", pattern=r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$", max_length=35)

    @field_validator("full_name")
    @classmethod
    def _printable(cls, value: str) -> str:
        if not value.isprintable():
            raise ValueError("must not contain control characters")
        return value


class LoginIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: EmailStr = Field(max_length=320)
    password: str = Field(min_length=1, max_length=256, repr=False)


class TokenOut(BaseModel):
    access_token: str
    refresh_token: str
    token_type: Literal["Bearer"] = "Bearer"  # noqa: S105 (a scheme, not a secret)
    expires_in: int = Field(description="seconds until the access token expires")


class UserPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    email: str
    full_name: str
    locale: str
    email_verified: bool
    created_at: datetime


class TokenIn(BaseModel):
    """A single-use token from an email link."""

    model_config = ConfigDict(extra="forbid")

    token: str = Field(min_length=1, max_length=256, repr=False)


class EmailIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: EmailStr = Field(max_length=320)


class PasswordResetIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    token: str = Field(min_length=1, max_length=256, repr=False)
    new_password: str = Field(min_length=1, max_length=256, repr=False)


class PasswordChangeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    current_password: str = Field(min_length=1, max_length=256, repr=False)
    new_password: str = Field(min_length=1, max_length=256, repr=False)


class UserUpdate(BaseModel):
    """``PATCH /auth/me``: only the fields present change."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    full_name: str | None = Field(default=None, min_length=1, max_length=200)
    locale: str | None = Field(
        default=None, pattern=r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$", max_length=35
    )

    @field_validator("full_name")
    @classmethod
    def _printable(cls, value: str | None) -> str | None:
        if value is not None and not value.isprintable():
            raise ValueError("must not contain control characters")
        return value


class AccountDeleteIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    password: str = Field(min_length=1, max_length=256, repr=False)


class RefreshIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    refresh_token: str = Field(min_length=1, max_length=256, repr=False)


class LogoutIn(BaseModel):
    """``POST /auth/logout``: the refresh token too, so its session ends even if it differs."""

    model_config = ConfigDict(extra="forbid")

    refresh_token: str | None = Field(default=None, min_length=1, max_length=256, repr=False)


class SessionPublic(BaseModel):
    """One login of the caller: where from, when, and whether it is the one calling."""

    id: uuid.UUID
    created_at: datetime
    last_used_at: datetime | None
    expires_at: datetime
    ip_address: str | None
    user_agent: str | None
    current: bool = Field(description="the session of the access token making this request")
    revoked: bool


SessionsPage = Page[SessionPublic]


# -- organisations and API keys ------------------------------------------------------------


class OrganisationIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: str = Field(min_length=2, max_length=200)


class OrganisationOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    name: str
    created_at: datetime
    updated_at: datetime


class MemberIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: EmailStr
    role: Literal["admin", "member"] = "member"


class MemberOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    user_id: uuid.UUID
    email: str
    full_name: str
    role: Literal["admin", "member"]


class ApiKeyIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: str = Field(min_length=1, max_length=100)
    expires_at: datetime | None = Field(default=None, description="none: the key never expires")
    allowed_cidrs: list[str] = Field(
        default_factory=list, max_length=50, description="client networks allowed; empty: any"
    )


class ApiKeyOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    name: str
    prefix: str
    allowed_cidrs: list[str]
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None


class ApiKeyCreatedOut(ApiKeyOut):
    key: str = Field(description="the key itself: shown this once, never again")
