"""Events auth publishes (the producer owns them; JSON Schemas in ``contracts/auth``)."""

from __future__ import annotations

import uuid
from typing import ClassVar

from pydantic import EmailStr, Field

from tessera.common.messaging import Event

__all__ = ["PUBLISHED", "SessionRevoked", "UserRegistered"]


class UserRegistered(Event):
    """A new account exists; its owner still has to verify the email address."""

    type: ClassVar[str] = "auth.user.registered"
    version: ClassVar[int] = 1

    user_id: uuid.UUID
    email: EmailStr
    full_name: str = Field(min_length=1, max_length=200)
    locale: str = Field(default="en", max_length=35)
    verification_token: str = Field(
        min_length=20, description="single-use; mailed as a link, stored hashed by auth"
    )
    verification_expires_at: str = Field(description="ISO 8601 UTC")


class SessionRevoked(Event):
    """A session ended before its time: logout, password change or reset, account deletion,
    or a refresh token used twice. Its access tokens are refused from now on."""

    type: ClassVar[str] = "auth.session.revoked"
    version: ClassVar[int] = 1

    session_id: uuid.UUID
    user_id: uuid.UUID
    reason: str = Field(max_length=64)


PUBLISHED: list[type[Event]] = [UserRegistered, SessionRevoked]
