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

from sqlalchemy import Column, DateTime, Index, Integer, Text, func, text
from sqlalchemy.orm import registry
from sqlmodel import Field, SQLModel

from tessera.common.db import make_metadata
from tessera.common.runtime import MessagingTables

__all__ = [
    "Delivery",
    "Suppression",
    "decide_delivery",
    "lease_delivery",
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
    __table_args__ = (
        # the limit counts an address however it is capitalised
        Index(
            "ix_deliveries_lower_recipient_created_at", func.lower(text("recipient")), "created_at"
        ),
    )

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


# --- the delivery's steps, on asyncpg directly (a pooled connection, in a transaction where
# one is needed): a handful of statements an email, written once here; through the ORM they
# cost the mailer more CPU than building the email itself, and each one saved is a round trip.

# the two-key advisory locks of class RECIPIENT_LOCK are the mailer's, one per address
RECIPIENT_LOCK = 0x6D61696C  # "mail"
_RECORD = """
WITH held AS (SELECT pg_advisory_xact_lock($10, hashtext(lower(btrim($7::varchar)))))
INSERT INTO mailer.deliveries AS d (id, event_id, event_type, user_id, template, locale,
    recipient, subject, message_id, status, attempts, created_at, updated_at)
SELECT $1::uuid, $2::uuid, $3::varchar, $4::uuid, $5::varchar, $6::varchar, $7::varchar,
    $8::varchar, $9::varchar, 'queued', 0, now(), now() FROM held
ON CONFLICT (id) DO UPDATE SET id = d.id
RETURNING status, attempts, coalesce(lease_until > now(), false) AS leased
"""
# a new delivery: suppressed, limited, or leased, decided in one statement; its snapshot is
# taken after _RECORD took the recipient's lock, so it counts every lease committed before
_DECIDE = """
WITH facts AS (
    SELECT (SELECT created_at FROM mailer.suppressions WHERE address = $2) AS since,
           (SELECT count(*) FROM mailer.deliveries
             WHERE lower(recipient) = $2 AND created_at >= now() - make_interval(secs => $3)
               AND status IN ('sending', 'sent', 'retrying') AND id <> $1) AS recent
), decided AS (
    SELECT since, recent,
           CASE WHEN since IS NOT NULL THEN 'suppressed'
                WHEN recent >= $4 THEN 'limited' ELSE 'sending' END AS status
    FROM facts
)
UPDATE mailer.deliveries AS d
SET status = x.status,
    lease_until = CASE WHEN x.status = 'sending' THEN now() + make_interval(secs => $5) END,
    attempts = d.attempts + CASE WHEN x.status = 'sending' THEN 1 ELSE 0 END,
    last_error = CASE x.status
        WHEN 'suppressed' THEN
            'address suppressed since ' || to_char(x.since AT TIME ZONE 'UTC', 'YYYY-MM-DD')
        WHEN 'limited' THEN
            x.recent || ' emails to this address in the last ' || $6::text || ' s'
        ELSE d.last_error END,
    updated_at = now()
FROM decided AS x
WHERE d.id = $1
RETURNING d.status, d.attempts
"""
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
    another consumer's lease on it is still running.

    First it takes the recipient's lock (an advisory lock on the lower-cased address, held
    until the transaction ends): each address is one decision at a time, so
    :func:`decide_delivery`, the next statement, counts every lease committed before it and
    the per-recipient limit is exact however many consumers handle emails to one address at
    once. Two addresses may share a hash: they then merely take turns."""
    return await driver.fetchrow(
        _RECORD,
        row["id"], row["event_id"], row["event_type"], row["user_id"], row["template"],
        row["locale"], row["recipient"], row["subject"], row["message_id"], RECIPIENT_LOCK,
    )  # fmt: skip


async def decide_delivery(
    driver: Any,
    delivery_id: uuid.UUID,
    *,
    recipient: str,
    limit: int,
    window_s: int,
    lease_s: float,
) -> tuple[str, int]:
    """A new (``queued``) delivery becomes ``suppressed`` (its address hard-failed before),
    ``limited`` (the recipient had ``limit`` emails in the last ``window_s``: the reason is
    its ``last_error``), or ``sending``, leased for ``lease_s``. Its status and attempts.
    In the transaction of :func:`record_delivery`, after it."""
    found = await driver.fetchrow(
        _DECIDE, delivery_id, recipient.strip().lower(), float(window_s), limit,
        lease_s, str(window_s),
    )  # fmt: skip
    return str(found["status"]), int(found["attempts"])


async def lease_delivery(driver: Any, delivery_id: uuid.UUID, lease_s: float) -> int:
    """``sending`` until ``lease_s`` from now; the attempt number this is."""
    return int(await driver.fetchval(_LEASE, delivery_id, lease_s))


async def settle_delivery(
    driver: Any, delivery_id: uuid.UUID, status: str, error: str | None
) -> None:
    await driver.execute(_SETTLE, delivery_id, status, error)


async def suppress(driver: Any, address: str, reason: str, delivery_id: uuid.UUID) -> None:
    await driver.execute(_SUPPRESS, address.strip().lower(), reason, delivery_id)
