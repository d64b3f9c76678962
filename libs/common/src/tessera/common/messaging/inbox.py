"""Idempotent consumption: an event id is recorded in the same transaction as its effect."""

from __future__ import annotations

import uuid

from opentelemetry.instrumentation.utils import suppress_instrumentation
from sqlalchemy import (
    Column,
    DateTime,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    func,
    select,
)
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.ext.asyncio import AsyncSession

from tessera.common.db import driver_in_transaction

__all__ = ["already_claimed", "claim", "inbox_table"]


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
    name = f'"{table.schema}"."{table.name}"' if table.schema else f'"{table.name}"'
    driver = await driver_in_transaction(session)
    with suppress_instrumentation():
        claimed = await driver.fetchval(
            f"INSERT INTO {name} (event_id, consumer, event_type) VALUES ($1, $2, $3) "  # noqa: S608 (a table name of ours)
            "ON CONFLICT DO NOTHING RETURNING true",
            event_id,
            consumer,
            event_type,
        )
    return claimed is not None


async def already_claimed(
    session: AsyncSession, table: Table, *, event_id: uuid.UUID, consumer: str
) -> bool:
    """Whether ``consumer`` has claimed ``event_id`` (a read; the claim itself is :func:`claim`)."""
    found = await session.execute(
        select(table.c.event_id).where(table.c.event_id == event_id, table.c.consumer == consumer)
    )
    return found.first() is not None
