"""Tables of schema ``mailer``: one row per email sent (metadata, never the body)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from sqlalchemy import Column, DateTime
from sqlalchemy.orm import registry
from sqlmodel import Field, SQLModel

from tessera.common.db import make_metadata
from tessera.common.runtime import MessagingTables

__all__ = ["Delivery", "messaging", "metadata"]

metadata = make_metadata("mailer")
messaging = MessagingTables(metadata)


class MailerTable(SQLModel, registry=registry(metadata=metadata)):
    pass


class Delivery(MailerTable, table=True):
    """An email handed to the mail server for one event (unique per event and template)."""

    __tablename__ = "deliveries"

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
    status: str = Field(max_length=20)
    created_at: datetime = Field(
        default_factory=lambda: datetime.now(UTC),
        sa_column=Column(DateTime(timezone=True), nullable=False),
    )
    sent_at: datetime | None = Field(
        default=None, sa_column=Column(DateTime(timezone=True), nullable=True)
    )
