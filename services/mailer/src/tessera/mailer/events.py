"""Trimmed models of the events the mailer consumes: only the fields it reads."""

from __future__ import annotations

import uuid
from typing import ClassVar

from pydantic import ConfigDict

from tessera.common.messaging import Event

__all__ = ["CONSUMED", "UserRegistered"]


class UserRegistered(Event):
    """``auth.user.registered`` v1 as the mailer reads it."""

    model_config = ConfigDict(frozen=True, extra="ignore")
    type: ClassVar[str] = "auth.user.registered"
    version: ClassVar[int] = 1

    user_id: uuid.UUID
    email: str
    full_name: str
    locale: str = "en"
    verification_token: str


CONSUMED: list[type[Event]] = [UserRegistered]
