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
from typing import Any

from sqlalchemy import Column, DateTime, Index, Integer, Text, func
from sqlalchemy.orm import registry
from sqlmodel import Field, SQLModel

from tessera.common.db import make_metadata
from tessera.common.runtime import MessagingTables

__all__ = [
    "Delivery",
    "Suppression",
    "blocking",
    "hold_recipient",
    "lease_delivery",
    "mark_delivery",
    "messaging",
    "metadata",
    "record_delivery",
    "settle_delivery",
    "suppress",
]

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


# --- the delivery's steps, on the asyncpg connection of the unit of work's transaction -------
# (``tessera.common.db.driver_in_transaction``): a handful of statements an email, written
# once here; through the ORM they cost the mailer more CPU than building the email itself.

_RECORD = """
INSERT INTO mailer.deliveries AS d (id, event_id, event_type, user_id, template, locale,
    recipient, subject, message_id, status, attempts, created_at, updated_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'queued', 0, now(), now())
ON CONFLICT (id) DO UPDATE SET id = d.id
RETURNING status, attempts, coalesce(lease_until > now(), false) AS leased
"""
_BLOCKED = """
SELECT (SELECT created_at FROM mailer.suppressions WHERE address = $1) AS suppressed_since,
       (SELECT count(*) FROM mailer.deliveries
         WHERE recipient = $2 AND created_at >= now() - make_interval(secs => $3)
           AND status IN ('sending', 'sent', 'retrying') AND id <> $4) AS recent
"""
# the two-key advisory locks of class RECIPIENT_LOCK are the mailer's, one per address
RECIPIENT_LOCK = 0x6D61696C  # "mail"
_HOLD = "SELECT pg_advisory_xact_lock($1, hashtext($2))"
_MARK = (
    "UPDATE mailer.deliveries SET status = $2, last_error = $3, updated_at = now() WHERE id = $1"
)
_LEASE = """
UPDATE mailer.deliveries
SET status = 'sending', lease_until = now() + make_interval(secs => $2),
    attempts = attempts + 1, updated_at = now()
WHERE id = $1 RETURNING attempts
"""
_SETTLE = """
UPDATE mailer.deliveries
SET status = $2::varchar, lease_until = NULL, updated_at = now(),
    sent_at = CASE WHEN $2::varchar = 'sent' THEN now() ELSE sent_at END,
    last_error = coalesce($3, last_error)
WHERE id = $1
"""
_SUPPRESS = """
INSERT INTO mailer.suppressions (address, reason, delivery_id, created_at)
VALUES ($1, $2, $3, now()) ON CONFLICT (address) DO NOTHING
"""


async def record_delivery(driver: Any, row: dict[str, Any]) -> Any:
    """Insert the delivery if new, lock it either way; its status, attempts and whether
    another consumer's lease on it is still running."""
    return await driver.fetchrow(
        _RECORD,
        row["id"], row["event_id"], row["event_type"], row["user_id"], row["template"],
        row["locale"], row["recipient"], row["subject"], row["message_id"],
    )  # fmt: skip


async def hold_recipient(driver: Any, recipient: str) -> None:
    """Wait until no other transaction is deciding about an email to ``recipient`` (any case),
    and keep the others waiting until this one ends. Taken before :func:`blocking` counts, so
    each address's count and lease are one decision at a time, and the next statement's
    snapshot sees the lease the previous holder committed. Two addresses may share a hash:
    they then merely take turns."""
    await driver.execute(_HOLD, RECIPIENT_LOCK, recipient.strip().lower())


async def blocking(
    driver: Any, *, delivery_id: uuid.UUID, recipient: str, window_s: int
) -> tuple[datetime | None, int]:
    """When the address was suppressed (or None), and how many other emails it was sent
    in the last ``window_s``."""
    found = await driver.fetchrow(
        _BLOCKED, recipient.strip().lower(), recipient, float(window_s), delivery_id
    )
    return found["suppressed_since"], int(found["recent"])


async def mark_delivery(driver: Any, delivery_id: uuid.UUID, status: str, why: str) -> None:
    await driver.execute(_MARK, delivery_id, status, why)


async def lease_delivery(driver: Any, delivery_id: uuid.UUID, lease_s: float) -> int:
    """``sending`` until ``lease_s`` from now; the attempt number this is."""
    return int(await driver.fetchval(_LEASE, delivery_id, lease_s))


async def settle_delivery(
    driver: Any, delivery_id: uuid.UUID, status: str, error: str | None
) -> None:
    await driver.execute(_SETTLE, delivery_id, status, error)


async def suppress(driver: Any, address: str, reason: str, delivery_id: uuid.UUID) -> None:
    await driver.execute(_SUPPRESS, address.strip().lower(), reason, delivery_id)
