"""Tables of schema ``auth``; query helpers here never commit."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Identity,
    Index,
    LargeBinary,
    false,
    select,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import registry
from sqlmodel import Field, SQLModel

from tessera.common.db import make_metadata
from tessera.common.runtime import MessagingTables

metadata = make_metadata("auth")
messaging = MessagingTables(metadata)


def utcnow() -> datetime:
    return datetime.now(UTC)


class AuthTable(SQLModel, registry=registry(metadata=metadata)):
    pass


class User(AuthTable, table=True):
    __tablename__ = "users"
    __table_args__ = (Index("uq_users_email_normalized", "email_normalized", unique=True),)

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    email: str = Field(max_length=320)
    email_normalized: str = Field(max_length=320)
    full_name: str = Field(max_length=200)
    locale: str = Field(default="en", max_length=35)
    password_hash: str = Field(max_length=255)
    email_verified_at: datetime | None = Field(
        default=None, sa_column=Column(DateTime(timezone=True), nullable=True)
    )
    password_changed_at: datetime | None = Field(
        default=None, sa_column=Column(DateTime(timezone=True), nullable=True)
    )
    deleted_at: datetime | None = Field(
        default=None, sa_column=Column(DateTime(timezone=True), nullable=True)
    )
    is_superadmin: bool = Field(
        default=False, sa_column=Column(Boolean, nullable=False, server_default=false())
    )
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(DateTime(timezone=True), nullable=False)
    )
    updated_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(DateTime(timezone=True), nullable=False)
    )


class Session(AuthTable, table=True):
    """A login (a refresh-token family): every rotated refresh token belongs to one session.

    ``id`` is the ``sid`` claim of every access token issued for it; revoking the session
    deny-lists that ``sid`` in Redis until its last access token has expired.
    """

    __tablename__ = "sessions"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    user_id: uuid.UUID = Field(foreign_key="auth.users.id", index=True, ondelete="CASCADE")
    user_agent: str | None = Field(default=None, max_length=512)
    ip_address: str | None = Field(default=None, max_length=64)
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(DateTime(timezone=True), nullable=False)
    )
    last_used_at: datetime | None = Field(
        default=None, sa_column=Column(DateTime(timezone=True), nullable=True)
    )
    expires_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    revoked_at: datetime | None = Field(
        default=None, sa_column=Column(DateTime(timezone=True), nullable=True)
    )
    revoked_reason: str | None = Field(default=None, max_length=64)


class RefreshToken(AuthTable, table=True):
    """One refresh token of a session, stored hashed; used at most once (then rotated)."""

    __tablename__ = "refresh_tokens"

    token_hash: str = Field(primary_key=True, max_length=64)
    session_id: uuid.UUID = Field(foreign_key="auth.sessions.id", index=True, ondelete="CASCADE")
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(DateTime(timezone=True), nullable=False)
    )
    expires_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    used_at: datetime | None = Field(
        default=None, sa_column=Column(DateTime(timezone=True), nullable=True)
    )


class EmailToken(AuthTable, table=True):
    """A single-use token mailed to a user (verification now; recovery and links later)."""

    __tablename__ = "email_tokens"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    user_id: uuid.UUID = Field(foreign_key="auth.users.id", index=True, ondelete="CASCADE")
    purpose: str = Field(max_length=32)
    token_hash: str = Field(max_length=64, unique=True)
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(DateTime(timezone=True), nullable=False)
    )
    expires_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    used_at: datetime | None = Field(
        default=None, sa_column=Column(DateTime(timezone=True), nullable=True)
    )


class SigningKey(AuthTable, table=True):
    """A JWT signing key; the private half is encrypted at rest."""

    __tablename__ = "signing_keys"

    kid: str = Field(primary_key=True, max_length=64)
    algorithm: str = Field(max_length=16)
    private_key_encrypted: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    public_jwk: dict[str, Any] = Field(sa_column=Column(JSONB, nullable=False))
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(DateTime(timezone=True), nullable=False)
    )
    retired_at: datetime | None = Field(
        default=None, sa_column=Column(DateTime(timezone=True), nullable=True)
    )
    verify_until: datetime | None = Field(
        default=None, sa_column=Column(DateTime(timezone=True), nullable=True)
    )


class Organisation(AuthTable, table=True):
    """An organisation: the MISP "org" and the owner of applets' workspaces."""

    __tablename__ = "organisations"
    __table_args__ = (Index("uq_organisations_name_normalized", "name_normalized", unique=True),)

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    name: str = Field(max_length=200)
    name_normalized: str = Field(max_length=200)
    created_by: uuid.UUID | None = Field(
        default=None, foreign_key="auth.users.id", ondelete="SET NULL"
    )
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(DateTime(timezone=True), nullable=False)
    )
    updated_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(DateTime(timezone=True), nullable=False)
    )


class Membership(AuthTable, table=True):
    """A user's role in an organisation: ``admin`` or ``member``."""

    __tablename__ = "memberships"

    organisation_id: uuid.UUID = Field(
        foreign_key="auth.organisations.id", primary_key=True, ondelete="CASCADE"
    )
    user_id: uuid.UUID = Field(
        foreign_key="auth.users.id", primary_key=True, index=True, ondelete="CASCADE"
    )
    role: str = Field(max_length=16)
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(DateTime(timezone=True), nullable=False)
    )


class ApiKey(AuthTable, table=True):
    """A personal API key; only its SHA-256 is kept, the key itself is shown once."""

    __tablename__ = "api_keys"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    user_id: uuid.UUID = Field(foreign_key="auth.users.id", index=True, ondelete="CASCADE")
    name: str = Field(max_length=100)
    prefix: str = Field(max_length=16, description="the key's public start, to recognise it")
    key_hash: str = Field(max_length=64, unique=True)
    allowed_cidrs: list[str] = Field(
        default_factory=list, sa_column=Column(JSONB, nullable=False, server_default="[]")
    )
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(DateTime(timezone=True), nullable=False)
    )
    expires_at: datetime | None = Field(
        default=None, sa_column=Column(DateTime(timezone=True), nullable=True)
    )
    revoked_at: datetime | None = Field(
        default=None, sa_column=Column(DateTime(timezone=True), nullable=True)
    )


class AuditEntry(AuthTable, table=True):
    """Who did what, when and from where; before/after of a change. Never a secret."""

    __tablename__ = "audit_log"

    id: int | None = Field(
        default=None, sa_column=Column(BigInteger, Identity(always=True), primary_key=True)
    )
    occurred_at: datetime = Field(
        default_factory=utcnow,
        sa_column=Column(DateTime(timezone=True), nullable=False, index=True),
    )
    actor_id: uuid.UUID | None = Field(default=None, index=True)
    action: str = Field(max_length=64, index=True)
    target_type: str = Field(max_length=32)
    target_id: str | None = Field(default=None, max_length=64, index=True)
    organisation_id: uuid.UUID | None = Field(default=None, index=True)
    ip_address: str | None = Field(default=None, max_length=64)
    user_agent: str | None = Field(default=None, max_length=512)
    request_id: str | None = Field(default=None, max_length=128)
    before: dict[str, Any] | None = Field(default=None, sa_column=Column(JSONB, nullable=True))
    after: dict[str, Any] | None = Field(default=None, sa_column=Column(JSONB, nullable=True))


def normalize_email(email: str) -> str:
    return email.strip().lower()


async def live_user(
    session: AsyncSession, user_id: uuid.UUID, *, lock: bool = False
) -> User | None:
    """The account behind a token, unless it was deleted since the token was issued."""
    user = await session.get(User, user_id, with_for_update=lock)
    return user if user is not None and user.deleted_at is None else None


@dataclass(frozen=True)
class UserView:
    """What a read of one account shows (``/auth/me``): no secret columns."""

    id: uuid.UUID
    email: str
    full_name: str
    locale: str
    email_verified_at: datetime | None
    created_at: datetime


async def live_user_view(driver: Any, user_id: uuid.UUID) -> UserView | None:
    """:func:`live_user` for reads on the hot path: straight through asyncpg
    (``uow.driver()``), no ORM object."""
    row = await driver.fetchrow(
        "SELECT id, email, full_name, locale, email_verified_at, created_at FROM users "
        "WHERE id = $1 AND deleted_at IS NULL",
        user_id,
    )
    return UserView(**dict(row)) if row is not None else None


async def user_by_email(session: AsyncSession, email: str) -> User | None:
    stmt = select(User).where(User.email_normalized == normalize_email(email))  # type: ignore[arg-type]
    return (await session.execute(stmt)).scalar_one_or_none()


async def usable_signing_keys(session: AsyncSession) -> list[SigningKey]:
    now = utcnow()
    stmt = (
        select(SigningKey)
        .where(
            (SigningKey.verify_until.is_(None)) | (SigningKey.verify_until > now)  # type: ignore[union-attr,operator]
        )
        .order_by(SigningKey.created_at.desc())  # type: ignore[attr-defined]
    )
    return list((await session.execute(stmt)).scalars())


__all__ = [
    "ApiKey",
    "AuditEntry",
    "EmailToken",
    "Membership",
    "Organisation",
    "RefreshToken",
    "Session",
    "SigningKey",
    "User",
    "live_user",
    "messaging",
    "metadata",
    "normalize_email",
    "usable_signing_keys",
    "user_by_email",
]
