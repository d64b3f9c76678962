"""The asyncpg connections the kernel uses under SQLAlchemy's pool, for its hot statements.

``pooled_driver`` is a pooled connection outside any transaction (the relay's claims and
settles, the hottest reads); ``driver_in_transaction`` is the connection of a session's own
transaction (outbox insert, inbox claim): what it writes commits or rolls back with the rest.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import TYPE_CHECKING

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import create_async_engine

from tessera.common.db import driver_in_transaction, pooled_driver

if TYPE_CHECKING:
    from conftest import Probe

pytestmark = pytest.mark.timeout(30)


async def _backends(probe: Probe, application_name: str) -> int:
    async with probe.admin() as admin:
        return int(
            await admin.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1",
                application_name,
            )
        )


async def test_overflow_connections_given_back_by_the_driver_are_closed_not_leaked(
    probe: Probe,
) -> None:
    name = f"drivers-{uuid.uuid4().hex[:8]}"
    engine = create_async_engine(
        probe.settings.database.async_url(),
        pool_size=1,
        max_overflow=3,
        connect_args={"server_settings": {"application_name": name}},
    )
    entered = asyncio.Event()
    inside = 0

    async def hold() -> int:
        nonlocal inside
        async with pooled_driver(engine) as driver:
            inside += 1
            if inside == 4:
                entered.set()
            await asyncio.wait_for(entered.wait(), 10)
            return int(await driver.fetchval("SELECT 1"))

    assert await asyncio.gather(*(hold() for _ in range(4))) == [1, 1, 1, 1]

    # the pool keeps one; the three overflow connections were closed on the server too
    assert engine.pool.checkedout() == 0  # type: ignore[attr-defined]
    try:
        assert await _backends(probe, name) == 1
    finally:
        await engine.dispose()


async def test_a_statement_on_the_driver_of_a_session_rolls_back_with_the_session(
    probe: Probe,
) -> None:
    event_id = uuid.uuid4()
    t = probe.tables.inbox
    async with probe.sessions() as session:
        driver = await driver_in_transaction(session)
        await driver.execute(
            "INSERT INTO probe.inbox (event_id, consumer, event_type) VALUES ($1, 'p', 't')",
            event_id,
        )
        seen_inside = await session.scalar(
            select(func.count()).select_from(t).where(t.c.event_id == event_id)
        )
        await session.rollback()

    assert seen_inside == 1, "the session did not see what its driver wrote"
    async with probe.engine.connect() as conn:
        after = await conn.scalar(
            select(func.count()).select_from(t).where(t.c.event_id == event_id)
        )
    assert after == 0, "the driver's insert outlived the rollback: it ran outside the transaction"
