"""Events auth publishes (the producer owns them; JSON Schemas in ``contracts/auth``)."""

from __future__ import annotations

import uuid
from typing import ClassVar

from pydantic import EmailStr, Field

from tessera.common.messaging import Event

__all__ = ["PUBLISHED", "UserRegistered"]


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


PUBLISHED: list[type[Event]] = [UserRegistered]
