"""Create the database, each service's login role and schema (idempotent).

Run once per environment with an administrative connection (``admin_database_url``). Each
service's role owns its schema and nothing else: it cannot read another service's tables.
"""

from __future__ import annotations

import asyncpg
from sqlalchemy.engine import make_url

from tessera.common.settings import ServiceSettings

__all__ = ["bootstrap_database"]

_LOCK_KEY = 0x7E55E7A


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


async def bootstrap_database(settings: ServiceSettings) -> list[str]:
    """Ensure database, role and schema for one service; return what was created."""
    target = make_url(settings.database.url.get_secret_value())
    admin = make_url(settings.admin_database_url.get_secret_value())
    database = target.database or "tessera"
    role = target.username or settings.role_name
    password = target.password
    schema = settings.schema_name
    created: list[str] = []

    def dsn(db: str | None) -> str:
        return admin.set(drivername="postgresql", database=db).render_as_string(hide_password=False)

    conn = await asyncpg.connect(dsn(admin.database or "postgres"))
    try:
        await conn.execute("SELECT pg_advisory_lock($1)", _LOCK_KEY)
        if not await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", database):
            await conn.execute(f"CREATE DATABASE {_quote(database)}")
            created.append(f"database {database}")
        if not await conn.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", role):
            pw = f" PASSWORD {_literal(str(password))}" if password else ""
            await conn.execute(f"CREATE ROLE {_quote(role)} LOGIN{pw}")
            created.append(f"role {role}")
        elif password:
            await conn.execute(
                f"ALTER ROLE {_quote(role)} LOGIN PASSWORD {_literal(str(password))}"
            )
        await conn.execute("SELECT pg_advisory_unlock($1)", _LOCK_KEY)
    finally:
        await conn.close()

    conn = await asyncpg.connect(dsn(database))
    try:
        await conn.execute("SELECT pg_advisory_lock($1)", _LOCK_KEY)
        if not await conn.fetchval("SELECT 1 FROM pg_namespace WHERE nspname = $1", schema):
            await conn.execute(f"CREATE SCHEMA {_quote(schema)} AUTHORIZATION {_quote(role)}")
            created.append(f"schema {schema}")
        else:
            await conn.execute(f"ALTER SCHEMA {_quote(schema)} OWNER TO {_quote(role)}")
        await conn.execute(f"REVOKE ALL ON SCHEMA {_quote(schema)} FROM PUBLIC")
        await conn.execute("REVOKE CREATE ON SCHEMA public FROM PUBLIC")
        await conn.execute(
            f"ALTER ROLE {_quote(role)} IN DATABASE {_quote(database)} "
            f"SET search_path TO {_quote(schema)}"
        )
        await conn.execute("SELECT pg_advisory_unlock($1)", _LOCK_KEY)
    finally:
        await conn.close()
    return created
