"""Tables of schema ``mailer``: one row per email (metadata, never the body or a token).

A delivery's ``status``:

* ``queued`` — recorded, not handed over yet;
* ``sending`` — leased to one consumer until ``lease_until``, which talks SMTP outside any
  transaction; a lease that ran out means that consumer died while sending (see
  ``service.py`` for what happens then);
* ``sent`` — the server accepted it (``sent_at``); nothing ever sends it again;
* ``retrying`` — a temporary failure (``last_error``); the event is retried;
* ``failed`` — refused for good, or still failing after the last retry;
* ``suppressed`` — not sent: the address hard-failed before (``suppressions``);
* ``limited`` — not sent: the recipient had ``MAILER__RECIPIENT_LIMIT`` emails already.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from sqlalchemy import Column, DateTime, Index, Integer, Text, func
from sqlalchemy.orm import registry
from sqlmodel import Field, SQLModel

from tessera.common.db import make_metadata
from tessera.common.runtime import MessagingTables

__all__ = ["Delivery", "Suppression", "messaging", "metadata"]

metadata = make_metadata("mailer")
messaging = MessagingTables(metadata)


class MailerTable(SQLModel, registry=registry(metadata=metadata)):
    pass


class Delivery(MailerTable, table=True):
    """One email of one event (unique per event, template and recipient)."""

    __tablename__ = "deliveries"
    __table_args__ = (Index(None, "recipient", "created_at"),)

    id: uuid.UUID = Field(primary_key=True)
    event_id: uuid.UUID = Field(index=True)
    event_type: str = Field(max_length=200)
    user_id: uuid.UUID | None = Field(
        default=None, index=True, description="whose mail: erased on auth.user.deleted"
    )
    template: str = Field(max_length=100)
    locale: str = Field(max_length=35)
    recipient: str = Field(max_length=320)
    subject: str = Field(max_length=300)
    message_id: str = Field(max_length=300)
    status: str = Field(max_length=20, index=True)
    attempts: int = Field(default=0, sa_column=Column(Integer, nullable=False, server_default="0"))
    last_error: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    lease_until: datetime | None = Field(
        default=None, sa_column=Column(DateTime(timezone=True), nullable=True)
    )
    created_at: datetime = Field(
        default_factory=lambda: datetime.now(UTC),
        sa_column=Column(DateTime(timezone=True), nullable=False),
    )
    updated_at: datetime = Field(
        default_factory=lambda: datetime.now(UTC),
        sa_column=Column(DateTime(timezone=True), nullable=False, server_default=func.now()),
    )
    sent_at: datetime | None = Field(
        default=None, sa_column=Column(DateTime(timezone=True), nullable=True)
    )


class Suppression(MailerTable, table=True):
    """An address not mailed any more: its server refused it for good (superadmins lift it)."""

    __tablename__ = "suppressions"

    address: str = Field(primary_key=True, max_length=320, description="lower case")
    reason: str = Field(sa_column=Column(Text, nullable=False))
    delivery_id: uuid.UUID | None = Field(default=None, description="the delivery that failed")
    created_at: datetime = Field(
        default_factory=lambda: datetime.now(UTC),
        sa_column=Column(DateTime(timezone=True), nullable=False),
    )
