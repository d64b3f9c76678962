"""Trimmed models of the events the mailer consumes: only the fields it reads."""

from __future__ import annotations

import uuid
from typing import ClassVar

from tessera.common.messaging import Event

__all__ = [
    "AccountLocked",
    "DeliveryFailed",
    "EmailVerificationRequested",
    "LoginLinkRequested",
    "PasswordChanged",
    "PasswordRecoveryRequested",
    "UserDeleted",
    "UserRegistered",
]


class _ToUser(Event):
    """What every mail-triggering auth event says about its recipient (Event ignores extras)."""

    user_id: uuid.UUID
    email: str
    full_name: str
    locale: str = "en"


class UserRegistered(_ToUser):
    """``auth.user.registered`` v1 as the mailer reads it."""

    type: ClassVar[str] = "auth.user.registered"
    version: ClassVar[int] = 1

    verification_token: str
    verification_expires_at: str = ""


class EmailVerificationRequested(_ToUser):
    """``auth.email_verification.requested`` v1 as the mailer reads it."""

    type: ClassVar[str] = "auth.email_verification.requested"
    version: ClassVar[int] = 1

    verification_token: str
    verification_expires_at: str = ""


class PasswordRecoveryRequested(_ToUser):
    """``auth.password.recovery_requested`` v1 as the mailer reads it."""

    type: ClassVar[str] = "auth.password.recovery_requested"
    version: ClassVar[int] = 1

    reset_token: str
    expires_at: str = ""


class LoginLinkRequested(_ToUser):
    """``auth.login_link.requested`` v1 as the mailer reads it."""

    type: ClassVar[str] = "auth.login_link.requested"
    version: ClassVar[int] = 1

    login_token: str
    expires_at: str = ""


class PasswordChanged(_ToUser):
    """``auth.password.changed`` v1 as the mailer reads it."""

    type: ClassVar[str] = "auth.password.changed"
    version: ClassVar[int] = 1


class AccountLocked(_ToUser):
    """``auth.account.locked`` v1 as the mailer reads it."""

    type: ClassVar[str] = "auth.account.locked"
    version: ClassVar[int] = 1

    locked_until: str


class UserDeleted(Event):
    """``auth.user.deleted`` v1: erase what the mailer keeps about this user."""

    type: ClassVar[str] = "auth.user.deleted"
    version: ClassVar[int] = 1

    user_id: uuid.UUID


# --- what the mailer publishes ----------------------------------------------------------------


class DeliveryFailed(Event):
    """``mailer.delivery.failed`` v1: an email will not arrive — its server refused it for good
    (``permanent``), or it still failed after the last retry."""

    type: ClassVar[str] = "mailer.delivery.failed"
    version: ClassVar[int] = 1

    delivery_id: uuid.UUID
    event_id: uuid.UUID
    event_type: str
    template: str
    recipient: str
    user_id: uuid.UUID | None = None
    permanent: bool
    reason: str
