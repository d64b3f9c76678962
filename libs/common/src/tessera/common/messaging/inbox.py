"""Idempotent consumption: an event id is recorded in the same transaction as its effect."""

from __future__ import annotations

import uuid
from typing import Any

from opentelemetry.instrumentation.utils import suppress_instrumentation
from sqlalchemy import (
    Column,
    DateTime,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    func,
)
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.ext.asyncio import AsyncSession

from tessera.common.db import driver_in_transaction, qualified_name

__all__ = ["already_claimed_on", "claim", "claim_on", "inbox_table"]


def inbox_table(metadata: MetaData) -> Table:
    return Table(
        "inbox",
        metadata,
        Column("event_id", UUID(as_uuid=True), nullable=False),
        Column("consumer", String(200), nullable=False),
        Column("event_type", String(200), nullable=False),
        Column("processed_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
        PrimaryKeyConstraint("event_id", "consumer"),
    )


async def claim(
    session: AsyncSession, table: Table, *, event_id: uuid.UUID, consumer: str, event_type: str
) -> bool:
    """True the first time ``consumer`` sees ``event_id``; False on a redelivery.

    A concurrent claim of the same event waits on the first transaction's row lock and
    then sees the conflict, so two replicas never both proceed. Sent on the asyncpg
    connection of the session's transaction, untraced (the consumer's span covers it).
    """
    driver = await driver_in_transaction(session)
    return await claim_on(
        driver, table, event_id=event_id, consumer=consumer, event_type=event_type
    )


async def claim_on(
    driver: Any, table: Table, *, event_id: uuid.UUID, consumer: str, event_type: str
) -> bool:
    """:func:`claim` on an asyncpg connection: in its transaction if it has one, else a
    statement that commits on its own."""
    with suppress_instrumentation():
        claimed = await driver.fetchval(
            f"INSERT INTO {qualified_name(table)} (event_id, consumer, event_type) "  # noqa: S608
            "VALUES ($1, $2, $3) ON CONFLICT DO NOTHING RETURNING true",
            event_id,
            consumer,
            event_type,
        )
    return claimed is not None


async def already_claimed_on(
    driver: Any, table: Table, *, event_id: uuid.UUID, consumer: str
) -> bool:
    """Whether ``consumer`` has claimed ``event_id`` (a read; the claim itself is :func:`claim`)."""
    with suppress_instrumentation():
        found = await driver.fetchval(
            f"SELECT true FROM {qualified_name(table)} WHERE event_id = $1 AND consumer = $2",  # noqa: S608
            event_id,
            consumer,
        )
    return found is not None
