"""Each service's login role touches its own schema and nothing else (real PostgreSQL)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

import asyncpg
import pytest
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from tessera.auth.app import MIGRATIONS as AUTH_MIGRATIONS
from tessera.auth.settings import Settings as AuthSettings
from tessera.common.bootstrap import bootstrap_database
from tessera.common.db import create_engine, schema_is_migrated
from tessera.common.migrations import head_revision
from tessera.common.testing import Infra, make_settings, prepare_database
from tessera.mailer.app import MIGRATIONS as MAILER_MIGRATIONS
from tessera.mailer.settings import Settings as MailerSettings


@pytest.fixture(scope="module")
def migrated(infra: Infra) -> Infra:
    """auth and mailer bootstrapped (roles, schemas) and migrated in this run's database."""
    prepare_database(make_settings(AuthSettings, infra), AUTH_MIGRATIONS)
    prepare_database(make_settings(MailerSettings, infra), MAILER_MIGRATIONS)
    return infra


ConnectAs = Callable[[str], Awaitable[asyncpg.Connection]]


@pytest.fixture
async def connect_as(migrated: Infra) -> AsyncIterator[ConnectAs]:
    """Open asyncpg connections as a service's own login role; all closed afterwards."""
    opened: list[asyncpg.Connection] = []

    async def connect(service: str) -> asyncpg.Connection:
        dsn = migrated.database_url(service).replace("postgresql+asyncpg://", "postgresql://")
        conn = await asyncpg.connect(dsn)
        opened.append(conn)
        return conn

    yield connect
    for conn in opened:
        await conn.close()


def admin_dsn(infra: Infra) -> str:
    return (
        make_url(infra.postgres_admin)
        .set(drivername="postgresql", database=infra.database)
        .render_as_string(hide_password=False)
    )


async def test_auth_role_cannot_read_mailer_tables(connect_as: ConnectAs) -> None:
    auth = await connect_as("auth")
    assert await auth.fetchval("SELECT current_user") == "tessera_auth"
    for query in (
        "SELECT * FROM mailer.deliveries",
        "SELECT * FROM mailer.outbox",
        "SELECT * FROM mailer.alembic_version",
    ):
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await auth.fetch(query)


async def test_auth_role_cannot_create_tables_outside_its_schema(
    connect_as: ConnectAs,
) -> None:
    auth = await connect_as("auth")
    name = f"intruder_{uuid.uuid4().hex[:8]}"
    for statement in (
        f"CREATE TABLE mailer.{name} (id int)",
        f"CREATE TABLE public.{name} (id int)",
        f"CREATE SCHEMA {name}",
    ):
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await auth.execute(statement)


async def test_auth_role_reads_and_writes_its_own_schema(
    connect_as: ConnectAs,
) -> None:
    auth = await connect_as("auth")
    assert await auth.fetchval("SELECT count(*) FROM auth.users") >= 0
    # search_path is its own schema, so unqualified names resolve there
    assert await auth.fetchval("SHOW search_path") == "auth"
    assert await auth.fetchval("SELECT count(*) FROM users") >= 0
    name = f"scratch_{uuid.uuid4().hex[:8]}"
    await auth.execute(f"CREATE TABLE auth.{name} (id int)")
    await auth.execute(f"DROP TABLE auth.{name}")


async def test_mailer_role_cannot_read_auth_tables(connect_as: ConnectAs) -> None:
    mailer = await connect_as("mailer")
    assert await mailer.fetchval("SELECT current_user") == "tessera_mailer"
    for query in ("SELECT * FROM auth.users", "SELECT * FROM auth.sessions"):
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await mailer.fetch(query)


async def test_mailer_role_cannot_create_tables_outside_its_schema(
    connect_as: ConnectAs,
) -> None:
    mailer = await connect_as("mailer")
    name = f"intruder_{uuid.uuid4().hex[:8]}"
    for statement in (
        f"CREATE TABLE auth.{name} (id int)",
        f"CREATE TABLE public.{name} (id int)",
        f"CREATE SCHEMA {name}",
    ):
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await mailer.execute(statement)


async def test_mailer_role_reads_its_own_schema(connect_as: ConnectAs) -> None:
    mailer = await connect_as("mailer")
    assert await mailer.fetchval("SELECT count(*) FROM mailer.deliveries") >= 0


async def test_bootstrap_twice_changes_nothing_and_keeps_the_isolation(
    migrated: Infra, connect_as: ConnectAs
) -> None:
    assert await bootstrap_database(make_settings(AuthSettings, migrated)) == []
    assert await bootstrap_database(make_settings(MailerSettings, migrated)) == []
    mailer = await connect_as("mailer")
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        await mailer.fetch("SELECT * FROM auth.users")


async def test_schema_without_alembic_version_is_reported_unmigrated(migrated: Infra) -> None:
    schema = f"nomig_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(admin_dsn(migrated))
    engine = create_async_engine(
        admin_dsn(migrated).replace("postgresql://", "postgresql+asyncpg://", 1)
    )
    try:
        await admin.execute(f'CREATE SCHEMA "{schema}"')
        await admin.execute(f'CREATE TABLE "{schema}".stuff (id int)')
        reason = await schema_is_migrated(engine, schema, "0001")
        assert reason is not None
        assert schema in reason
        assert "no migrations applied" in reason
    finally:
        await engine.dispose()
        await admin.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        await admin.close()


async def test_migrated_schema_is_reported_at_head_and_a_newer_head_is_named(
    migrated: Infra,
) -> None:
    engine = create_engine(make_settings(AuthSettings, migrated))
    try:
        head = head_revision(AUTH_MIGRATIONS)
        assert head is not None
        assert await schema_is_migrated(engine, "auth", head) is None
        reason = await schema_is_migrated(engine, "auth", "9999_future")
        assert reason is not None
        assert head in reason
        assert "9999_future" in reason
    finally:
        await engine.dispose()


async def test_schema_migrated_by_a_newer_release_still_lets_older_code_start(
    migrated: Infra,
) -> None:
    """During a rolling deploy the schema may be ahead: old pods must keep starting."""
    engine = create_engine(make_settings(AuthSettings, migrated))
    try:
        head = head_revision(AUTH_MIGRATIONS)
        assert head is not None
        # the code knows only "0000_old" and "0001_older_head": the schema's revision is newer
        older_code = frozenset({"0000_old", "0001_older_head"})
        assert await schema_is_migrated(engine, "auth", "0001_older_head", known=older_code) is None
        # but code whose history contains the schema's revision, with a later head, is ahead
        newer_code = frozenset({head, "9999_future"})
        reason = await schema_is_migrated(engine, "auth", "9999_future", known=newer_code)
        assert reason is not None
        assert "9999_future" in reason
    finally:
        await engine.dispose()
