"""Idempotent consumption: an event id is recorded in the same transaction as its effect."""

from __future__ import annotations

import uuid

from sqlalchemy import Column, DateTime, MetaData, PrimaryKeyConstraint, String, Table, func
from sqlalchemy.dialects.postgresql import UUID, insert
from sqlalchemy.ext.asyncio import AsyncSession

__all__ = ["claim", "inbox_table"]


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
    then sees the conflict, so two replicas never both proceed.
    """
    stmt = (
        insert(table)
        .values(event_id=event_id, consumer=consumer, event_type=event_type)
        .on_conflict_do_nothing()
        .returning(table.c.event_id)
    )
    return (await session.execute(stmt)).first() is not None
