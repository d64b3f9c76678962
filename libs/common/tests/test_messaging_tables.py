"""The kernel's outbox and inbox tables are what its migration helpers build.

Every service's history creates these two tables with ``create_messaging_tables_v1`` and
``upgrade_messaging_tables_v2`` while its code reads and writes them through
``outbox_table`` and ``inbox_table``; a column, type, nullability, default or index that
differs between the two is a service that breaks at its first event. Checked here with
Alembic's own comparison against a schema the helpers build, for each new definition
(``tests/contract/test_migrations.py`` does the same per service, through its history).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.operations import Operations
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from tessera.common.db import make_metadata
from tessera.common.messaging.inbox import inbox_table
from tessera.common.messaging.outbox import outbox_table
from tessera.common.migrations import create_messaging_tables_v1, upgrade_messaging_tables_v2
from tessera.common.testing import Infra

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
async def schema(infra: Infra) -> AsyncIterator[tuple[AsyncEngine, str]]:
    """A schema of its own, built by the migration helpers, in this run's database."""
    name = f"tables_{uuid.uuid4().hex[:10]}"
    engine = create_async_engine(
        infra.database_url("probe").replace("tessera_probe:tessera_probe_dev", "postgres"),
    )
    async with engine.begin() as conn:
        await conn.execute(text(f'CREATE SCHEMA "{name}"'))

        def migrate(sync: Any) -> None:
            with Operations.context(MigrationContext.configure(sync)):
                create_messaging_tables_v1(name)
                upgrade_messaging_tables_v2(name)

        await conn.run_sync(migrate)
    try:
        yield engine, name
    finally:
        async with engine.begin() as conn:
            await conn.execute(text(f'DROP SCHEMA "{name}" CASCADE'))
        await engine.dispose()


async def test_outbox_and_inbox_definitions_match_what_the_migrations_build(
    schema: tuple[AsyncEngine, str],
) -> None:
    engine, name = schema
    metadata = make_metadata(name)
    outbox_table(metadata)
    inbox_table(metadata)

    def differences(sync: Any) -> list[Any]:
        context = MigrationContext.configure(
            sync,
            opts={
                "compare_type": True,
                "compare_server_default": True,
                "include_schemas": True,
                "include_name": lambda n, kind, _parent: kind != "schema" or n == name,
            },
        )
        return list(compare_metadata(context, metadata))

    async with engine.connect() as conn:
        found = await conn.run_sync(differences)
    assert found == [], found

    # Alembic does not compare an index's predicate (``WHERE sent_at IS NULL ...``): build
    # the definitions in a second schema and compare the indexes as PostgreSQL states them
    built = f"{name}_built"
    async with engine.begin() as conn:
        await conn.execute(text(f'CREATE SCHEMA "{built}"'))
        try:
            fresh = make_metadata(built)
            outbox_table(fresh)
            inbox_table(fresh)
            await conn.run_sync(fresh.create_all)
            migrated, defined = (await _indexes(conn, name), await _indexes(conn, built))
            columns = (await _columns(conn, name), await _columns(conn, built))
        finally:
            await conn.execute(text(f'DROP SCHEMA "{built}" CASCADE'))
    assert defined == migrated
    # nor a VARCHAR's length, and it may take a nullability it cannot see for the same: the
    # columns as PostgreSQL states them, too
    assert columns[1] == columns[0]
    assert "WHERE ((sent_at IS NULL) AND (parked_at IS NULL))" in migrated["ix_outbox_due"]


async def _columns(conn: Any, schema: str) -> dict[tuple[str, str], tuple[Any, ...]]:
    rows = await conn.execute(
        text(
            "SELECT table_name, column_name, data_type, character_maximum_length, is_nullable,"
            " column_default, is_identity FROM information_schema.columns"
            " WHERE table_schema = :s"
        ),
        {"s": schema},
    )
    return {(r[0], r[1]): tuple(r[2:]) for r in rows}


async def _indexes(conn: Any, schema: str) -> dict[str, str]:
    rows = await conn.execute(
        text("SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = :s"), {"s": schema}
    )
    return {r.indexname: r.indexdef.replace(f"{schema}.", "S.") for r in rows}
