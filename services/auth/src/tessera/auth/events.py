"""Events auth publishes (the producer owns them; JSON Schemas in ``contracts/auth``)."""

from __future__ import annotations

import uuid
from typing import ClassVar

from pydantic import EmailStr, Field

from tessera.common.messaging import Event

__all__ = [
    "PUBLISHED",
    "AccountDeleted",
    "AccountLocked",
    "ApiKeyCreated",
    "ApiKeyRevoked",
    "EmailVerificationRequested",
    "LoginLinkRequested",
    "MembershipGranted",
    "MembershipRevoked",
    "OrganisationCreated",
    "OrganisationUpdated",
    "PasswordChanged",
    "PasswordRecoveryRequested",
    "SessionRevoked",
    "UserDeleted",
    "UserRegistered",
]


class _Addressed(Event):
    """The recipient every auth event that leads to an email carries."""

    user_id: uuid.UUID
    email: EmailStr
    full_name: str = Field(max_length=200)
    locale: str = Field(default="en", max_length=35)


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


class EmailVerificationRequested(_Addressed):
    """A user asked for a new verification email; the new token replaces the earlier ones."""

    type: ClassVar[str] = "auth.email_verification.requested"
    version: ClassVar[int] = 1

    verification_token: str = Field(
        min_length=20, description="single-use; mailed as a link, stored hashed by auth"
    )
    verification_expires_at: str = Field(description="ISO 8601 UTC")


class PasswordRecoveryRequested(_Addressed):
    """Someone asked to reset the password of an existing account (sent to its owner only)."""

    type: ClassVar[str] = "auth.password.recovery_requested"
    version: ClassVar[int] = 1

    reset_token: str = Field(
        min_length=20, description="single-use; mailed as a link, stored hashed by auth"
    )
    expires_at: str = Field(description="ISO 8601 UTC")


class PasswordChanged(_Addressed):
    """The account's password was changed or reset; its owner is told in case it wasn't them."""

    type: ClassVar[str] = "auth.password.changed"
    version: ClassVar[int] = 1


class LoginLinkRequested(_Addressed):
    """Someone asked for a passwordless login link for an existing account."""

    type: ClassVar[str] = "auth.login_link.requested"
    version: ClassVar[int] = 1

    login_token: str = Field(
        min_length=20, description="single-use; mailed as a link, stored hashed by auth"
    )
    expires_at: str = Field(description="ISO 8601 UTC")


class UserDeleted(Event):
    """An account was deleted and its personal data anonymised; carries no personal data."""

    type: ClassVar[str] = "auth.user.deleted"
    version: ClassVar[int] = 1

    user_id: uuid.UUID


class AccountDeleted(_Addressed):
    """An account was deleted, told to its former address: the one event that carries the
    address after deletion, so its owner gets a last email. Published with
    ``auth.user.deleted``, in the same transaction; a consumer keeps the address no longer
    than it needs to write that email."""

    type: ClassVar[str] = "auth.account.deleted"
    version: ClassVar[int] = 1


class OrganisationCreated(Event):
    """An organisation exists; its creator is its first admin (a membership event follows)."""

    type: ClassVar[str] = "auth.organisation.created"
    version: ClassVar[int] = 1

    organisation_id: uuid.UUID
    name: str = Field(max_length=200)
    created_by: uuid.UUID | None = None


class OrganisationUpdated(Event):
    """An organisation was renamed."""

    type: ClassVar[str] = "auth.organisation.updated"
    version: ClassVar[int] = 1

    organisation_id: uuid.UUID
    name: str = Field(max_length=200)


class MembershipGranted(Event):
    """A user joined an organisation, or their role there changed."""

    type: ClassVar[str] = "auth.membership.granted"
    version: ClassVar[int] = 1

    organisation_id: uuid.UUID
    user_id: uuid.UUID
    role: str = Field(pattern="^(admin|member)$")


class MembershipRevoked(Event):
    """A user left an organisation."""

    type: ClassVar[str] = "auth.membership.revoked"
    version: ClassVar[int] = 1

    organisation_id: uuid.UUID
    user_id: uuid.UUID


class ApiKeyCreated(Event):
    """A personal API key exists. Services that accept keys (sync, MISP-style) keep a
    projection of ``key_hash`` (SHA-256 hex of the whole key) to verify them locally."""

    type: ClassVar[str] = "auth.api_key.created"
    version: ClassVar[int] = 1

    api_key_id: uuid.UUID
    user_id: uuid.UUID
    key_hash: str = Field(pattern="^[0-9a-f]{64}$")
    prefix: str = Field(max_length=16)
    expires_at: str | None = Field(default=None, description="ISO 8601 UTC; none: never")
    allowed_cidrs: list[str] = Field(default_factory=list)


class ApiKeyRevoked(Event):
    """A personal API key no longer authenticates anyone."""

    type: ClassVar[str] = "auth.api_key.revoked"
    version: ClassVar[int] = 1

    api_key_id: uuid.UUID
    user_id: uuid.UUID
    key_hash: str = Field(pattern="^[0-9a-f]{64}$")


class AccountLocked(_Addressed):
    """Too many wrong passwords: logins are refused until ``locked_until``; its owner is told."""

    type: ClassVar[str] = "auth.account.locked"
    version: ClassVar[int] = 1

    locked_for_s: int = Field(ge=1)
    locked_until: str = Field(description="ISO 8601 UTC")


PUBLISHED: list[type[Event]] = [
    UserRegistered,
    AccountLocked,
    OrganisationCreated,
    OrganisationUpdated,
    MembershipGranted,
    MembershipRevoked,
    ApiKeyCreated,
    ApiKeyRevoked,
    SessionRevoked,
    EmailVerificationRequested,
    PasswordRecoveryRequested,
    PasswordChanged,
    LoginLinkRequested,
    UserDeleted,
    AccountDeleted,
]
