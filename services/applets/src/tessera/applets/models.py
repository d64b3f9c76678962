"""Tables of schema ``applets``.

* The applet's current content is relational: ``applets``, ``activities``, ``items`` and
  ``flows`` (one row each, in order by ``position``). Replacing an applet rewrites its rows
  and keeps the ids the editor sent back.
* Every accepted change adds a row to ``versions``: the whole document as it was, which a
  trigger (migration ``0003``) forbids to ever change or disappear.
* ``roles``, ``invitations`` and ``transfers`` are who may do what on an applet.
* ``users``, ``organisations`` and ``memberships`` are this service's projection of auth's
  events: it never asks auth anything while serving a request.

Reads and writes of these rows are in ``store.py`` (asyncpg SQL; nothing there commits).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    ARRAY,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    UniqueConstraint,
    Uuid,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import registry
from sqlmodel import Field, SQLModel

from tessera.common.db import make_metadata
from tessera.common.runtime import MessagingTables

__all__ = [
    "Activity",
    "Applet",
    "Flow",
    "Invitation",
    "Item",
    "Membership",
    "Organisation",
    "RoleGrant",
    "Transfer",
    "User",
    "Version",
    "messaging",
    "metadata",
]

metadata = make_metadata("applets")
messaging = MessagingTables(metadata)


def utcnow() -> datetime:
    return datetime.now(UTC)


def _when(nullable: bool = False, **kw: Any) -> Any:
    return Field(
        default=None if nullable else ...,
        sa_column=Column(DateTime(timezone=True), nullable=nullable, **kw),
    )


def _json(nullable: bool = True) -> Any:
    return Field(default=None, sa_column=Column(JSONB, nullable=nullable))


class AppletsTable(SQLModel, registry=registry(metadata=metadata)):
    pass


# --- auth's projection ------------------------------------------------------------------------


class User(AppletsTable, table=True):
    """Who a user is (``auth.user.registered``); emptied on ``auth.user.deleted``."""

    __tablename__ = "users"
    __table_args__ = (Index(None, "email"),)

    id: uuid.UUID = Field(primary_key=True)
    email: str | None = Field(default=None, max_length=320, description="lower-cased")
    full_name: str | None = Field(default=None, max_length=200)
    locale: str = Field(default="en", max_length=35)
    deleted_at: datetime | None = _when(nullable=True)


class Organisation(AppletsTable, table=True):
    __tablename__ = "organisations"

    id: uuid.UUID = Field(primary_key=True)
    name: str = Field(max_length=200)


class Membership(AppletsTable, table=True):
    """A user's role in an organisation; a revoked one stays (``revoked_at``) so that it
    outweighs the membership an older access token still claims."""

    __tablename__ = "memberships"
    __table_args__ = (Index(None, "user_id"),)

    organisation_id: uuid.UUID = Field(primary_key=True)
    user_id: uuid.UUID = Field(primary_key=True)
    role: str = Field(max_length=20)
    revoked_at: datetime | None = _when(nullable=True)
    updated_at: datetime = _when()


# --- content ----------------------------------------------------------------------------------


class Applet(AppletsTable, table=True):
    __tablename__ = "applets"
    __table_args__ = (Index(None, "organisation_id"),)

    id: uuid.UUID = Field(primary_key=True)
    organisation_id: uuid.UUID
    display_name: str = Field(max_length=200)
    description: dict[str, Any] = _json(nullable=False)
    about: dict[str, Any] = _json(nullable=False)
    image: str | None = Field(default=None, max_length=2048)
    watermark: str | None = Field(default=None, max_length=2048)
    theme: dict[str, Any] | None = _json()
    encryption: dict[str, Any] | None = _json()
    retention: dict[str, Any] = _json(nullable=False)
    published: bool = False
    public_link_hash: str | None = Field(default=None, max_length=64, unique=True)
    answers_possible_at: datetime | None = _when(nullable=True)
    current_version: str = Field(max_length=20)
    created_by: uuid.UUID
    created_at: datetime = _when()
    updated_at: datetime = _when()
    deleted_at: datetime | None = _when(nullable=True)


def _unique_names(*columns: str) -> UniqueConstraint:
    """Names unique where they are referred to, checked at commit: a replacement may swap
    two parts' names within one statement."""
    return UniqueConstraint(*columns, deferrable=True, initially="DEFERRED")


class Activity(AppletsTable, table=True):
    __tablename__ = "activities"
    __table_args__ = (_unique_names("applet_id", "name"),)

    id: uuid.UUID = Field(primary_key=True)
    applet_id: uuid.UUID = Field(
        sa_column=Column(Uuid, ForeignKey("applets.applets.id", ondelete="CASCADE"), nullable=False)
    )
    position: int
    name: str = Field(max_length=100)
    description: dict[str, Any] = _json(nullable=False)
    splash_screen: str | None = Field(default=None, max_length=2048)
    image: str | None = Field(default=None, max_length=2048)
    show_all_at_once: bool = False
    is_skippable: bool = False
    is_reviewable: bool = False
    response_is_editable: bool = True
    is_hidden: bool = False
    scores_and_reports: dict[str, Any] | None = _json()


class Item(AppletsTable, table=True):
    __tablename__ = "items"
    __table_args__ = (_unique_names("activity_id", "name"), Index(None, "applet_id"))

    id: uuid.UUID = Field(primary_key=True)
    activity_id: uuid.UUID = Field(
        sa_column=Column(
            Uuid, ForeignKey("applets.activities.id", ondelete="CASCADE"), nullable=False
        )
    )
    applet_id: uuid.UUID
    position: int
    name: str = Field(max_length=100)
    question: dict[str, Any] = _json(nullable=False)
    response_type: str = Field(max_length=40)
    response_values: dict[str, Any] | None = _json()
    config: dict[str, Any] = _json(nullable=False)
    is_hidden: bool = False
    allow_edit: bool = True
    conditional_logic: dict[str, Any] | None = _json()


class Flow(AppletsTable, table=True):
    __tablename__ = "flows"
    __table_args__ = (_unique_names("applet_id", "name"),)

    id: uuid.UUID = Field(primary_key=True)
    applet_id: uuid.UUID = Field(
        sa_column=Column(Uuid, ForeignKey("applets.applets.id", ondelete="CASCADE"), nullable=False)
    )
    position: int
    name: str = Field(max_length=100)
    description: dict[str, Any] = _json(nullable=False)
    is_single_report: bool = False
    hide_badge: bool = False
    is_hidden: bool = False
    activity_ids: list[uuid.UUID] = Field(sa_column=Column(ARRAY(Uuid), nullable=False))


class Version(AppletsTable, table=True):
    """One immutable version: the applet's whole document when it was accepted."""

    __tablename__ = "versions"

    applet_id: uuid.UUID = Field(primary_key=True)
    version: str = Field(primary_key=True, max_length=20)
    major: int
    minor: int
    patch: int
    content: dict[str, Any] = _json(nullable=False)
    content_hash: str = Field(max_length=64, description="SHA-256 of the canonical JSON")
    created_by: uuid.UUID | None = None
    created_at: datetime = _when()


# --- access -----------------------------------------------------------------------------------


class RoleGrant(AppletsTable, table=True):
    """A user's role on an applet (a user may hold several: manager and respondent, say)."""

    __tablename__ = "roles"
    __table_args__ = (
        Index(None, "user_id"),
        Index(
            "uq_roles_respondent_secret_id",
            "applet_id",
            "secret_id",
            unique=True,
            postgresql_where=text("role = 'respondent' AND secret_id IS NOT NULL"),
        ),
    )

    applet_id: uuid.UUID = Field(primary_key=True)
    user_id: uuid.UUID = Field(primary_key=True)
    role: str = Field(primary_key=True, max_length=20)
    nickname: str | None = Field(default=None, max_length=100)
    secret_id: str | None = Field(default=None, max_length=100)
    respondents: list[uuid.UUID] = Field(
        default_factory=list,
        sa_column=Column(ARRAY(Uuid), nullable=False, server_default=text("'{}'")),
    )
    granted_by: uuid.UUID | None = None
    granted_at: datetime = _when()


class Invitation(AppletsTable, table=True):
    __tablename__ = "invitations"
    __table_args__ = (
        Index(None, "applet_id", "created_at"),
        Index(
            "uq_invitations_pending",
            "applet_id",
            "email",
            "role",
            unique=True,
            postgresql_where=text("status = 'pending'"),
        ),
    )

    id: uuid.UUID = Field(primary_key=True)
    applet_id: uuid.UUID
    email: str = Field(max_length=320, description="lower-cased")
    role: str = Field(max_length=20)
    locale: str = Field(max_length=35)
    nickname: str | None = Field(default=None, max_length=100)
    secret_id: str | None = Field(default=None, max_length=100)
    respondents: list[uuid.UUID] = Field(
        default_factory=list,
        sa_column=Column(ARRAY(Uuid), nullable=False, server_default=text("'{}'")),
    )
    token_hash: str = Field(max_length=64, unique=True)
    status: str = Field(max_length=20, description="pending, accepted, declined, revoked")
    sent_count: int = Field(default=1, sa_column=Column(Integer, nullable=False))
    invited_by: uuid.UUID
    user_id: uuid.UUID | None = Field(default=None, description="who accepted or declined")
    expires_at: datetime = _when()
    created_at: datetime = _when()
    updated_at: datetime = _when()


class Transfer(AppletsTable, table=True):
    """An owner's offer of their applet to someone, waiting for that person's consent."""

    __tablename__ = "transfers"
    __table_args__ = (
        Index(
            "uq_transfers_pending",
            "applet_id",
            unique=True,
            postgresql_where=text("status = 'pending'"),
        ),
    )

    id: uuid.UUID = Field(primary_key=True)
    applet_id: uuid.UUID
    email: str = Field(max_length=320)
    token_hash: str = Field(max_length=64, unique=True)
    status: str = Field(max_length=20, description="pending, accepted, declined, cancelled")
    requested_by: uuid.UUID
    user_id: uuid.UUID | None = None
    expires_at: datetime = _when()
    created_at: datetime = _when()
    updated_at: datetime = _when()
