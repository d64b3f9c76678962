"""The account emails, sent from auth's events: verification, recovery, sign-in link,
password changed, account locked, account deleted.

Every one goes to the account's own address, in its locale, and greets it by name; the
models below are the mailer's trimmed copies of auth's events (only the fields read here).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, ClassVar

from tessera.common.consumers import Handling
from tessera.common.messaging import Event
from tessera.mailer import service
from tessera.mailer.catalogue import SAMPLE_TOKEN, Email, Mail, Occasion, when

__all__ = [
    "AccountDeleted",
    "AccountLocked",
    "EmailVerificationRequested",
    "LoginLinkRequested",
    "PasswordChanged",
    "PasswordRecoveryRequested",
    "UserRegistered",
]

SAMPLE_USER: dict[str, Any] = {
    "user_id": uuid.UUID(int=1),
    "email": "ada@example.org",
    "full_name": "Ada Lovelace",
    "locale": "en",
}


class _ToUser(Event):
    """What every mail-triggering auth event says about its recipient (Event ignores extras)."""

    user_id: uuid.UUID
    email: str
    full_name: str
    locale: str = "en"


def _to(event: _ToUser, template: str, context: dict[str, Any]) -> Mail:
    greeting = {"full_name": event.full_name, "email": event.email}
    return Mail(template, event.email, event.locale, greeting | context, event.user_id)


# --- verification ---------------------------------------------------------------------------


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


def _verification(event: UserRegistered, at: Occasion) -> list[Mail]:
    """At registration and on each resend: confirm the address."""
    return [
        _to(
            event,
            "verify_email",
            {
                "link": at.link("verify-email", event.verification_token),
                "expires": when(event.verification_expires_at),
            },
        )
    ]


def _registered(now: datetime) -> Sequence[UserRegistered]:
    return [
        UserRegistered(
            **SAMPLE_USER,
            verification_token=SAMPLE_TOKEN,
            verification_expires_at=(now + timedelta(days=1)).isoformat(),
        )
    ]


verification = Email(
    on=(UserRegistered, EmailVerificationRequested),
    templates=("verify_email",),
    compose=_verification,
    samples=_registered,
)


# --- password reset -------------------------------------------------------------------------


class PasswordRecoveryRequested(_ToUser):
    """``auth.password.recovery_requested`` v1 as the mailer reads it."""

    type: ClassVar[str] = "auth.password.recovery_requested"
    version: ClassVar[int] = 1

    reset_token: str
    expires_at: str = ""


def _password_reset(event: PasswordRecoveryRequested, at: Occasion) -> list[Mail]:
    return [
        _to(
            event,
            "password_reset",
            {
                "link": at.link("reset-password", event.reset_token),
                "expires": when(event.expires_at),
            },
        )
    ]


password_reset = Email(
    on=(PasswordRecoveryRequested,),
    templates=("password_reset",),
    compose=_password_reset,
    samples=lambda now: [
        PasswordRecoveryRequested(
            **SAMPLE_USER,
            reset_token=SAMPLE_TOKEN,
            expires_at=(now + timedelta(minutes=15)).isoformat(),
        )
    ],
)


# --- sign-in link ---------------------------------------------------------------------------


class LoginLinkRequested(_ToUser):
    """``auth.login_link.requested`` v1 as the mailer reads it."""

    type: ClassVar[str] = "auth.login_link.requested"
    version: ClassVar[int] = 1

    login_token: str
    expires_at: str = ""


def _login_link(event: LoginLinkRequested, at: Occasion) -> list[Mail]:
    return [
        _to(
            event,
            "login_link",
            {"link": at.link("login-link", event.login_token), "expires": when(event.expires_at)},
        )
    ]


login_link = Email(
    on=(LoginLinkRequested,),
    templates=("login_link",),
    compose=_login_link,
    samples=lambda now: [
        LoginLinkRequested(
            **SAMPLE_USER,
            login_token=SAMPLE_TOKEN,
            expires_at=(now + timedelta(minutes=15)).isoformat(),
        )
    ],
)


# --- password changed -----------------------------------------------------------------------


class PasswordChanged(_ToUser):
    """``auth.password.changed`` v1 as the mailer reads it."""

    type: ClassVar[str] = "auth.password.changed"
    version: ClassVar[int] = 1


def _password_changed(event: PasswordChanged, at: Occasion) -> list[Mail]:
    """Told in case it was not them: when, and the way back in (no token: nothing to use)."""
    return [
        _to(
            event,
            "password_changed",
            {"changed_at": at.occurred_at, "recover_url": at.url("forgot-password")},
        )
    ]


password_changed = Email(
    on=(PasswordChanged,),
    templates=("password_changed",),
    compose=_password_changed,
    samples=lambda now: [PasswordChanged(**SAMPLE_USER)],
)


# --- account locked -------------------------------------------------------------------------


class AccountLocked(_ToUser):
    """``auth.account.locked`` v1 as the mailer reads it."""

    type: ClassVar[str] = "auth.account.locked"
    version: ClassVar[int] = 1

    locked_until: str


def _account_locked(event: AccountLocked, at: Occasion) -> list[Mail]:
    """Too many wrong passwords: until when, and the way out if it was not them."""
    return [
        _to(
            event,
            "account_locked",
            {"locked_until": when(event.locked_until), "recover_url": at.url("forgot-password")},
        )
    ]


account_locked = Email(
    on=(AccountLocked,),
    templates=("account_locked",),
    compose=_account_locked,
    samples=lambda now: [
        AccountLocked(**SAMPLE_USER, locked_until=(now + timedelta(minutes=5)).isoformat())
    ],
)


# --- account deleted ------------------------------------------------------------------------


class AccountDeleted(_ToUser):
    """``auth.account.deleted`` v1: the former address, once, so its owner is told; the
    mailer keeps it no longer than this email (see :func:`_erase_address`)."""

    type: ClassVar[str] = "auth.account.deleted"
    version: ClassVar[int] = 1


def _account_deleted(event: AccountDeleted, at: Occasion) -> list[Mail]:
    return [_to(event, "account_deleted", {"deleted_at": at.occurred_at})]


async def _erase_address(uow: Handling, event: AccountDeleted) -> None:
    """Once the goodbye is settled (or given back for a retry, which sends it from the event,
    not the row), the address leaves the delivery log, whichever of this event and
    ``auth.user.deleted`` came first: both erase, and this runs after its own delivery."""
    await service.erase_recipient(
        uow, user_id=event.user_id, address=event.email, until=uow.envelope.occurred_at
    )


account_deleted = Email(
    on=(AccountDeleted,),
    templates=("account_deleted",),
    compose=_account_deleted,
    samples=lambda now: [AccountDeleted(**SAMPLE_USER)],
    afterwards=_erase_address,
)
