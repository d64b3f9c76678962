"""Alembic helpers: each service has its own history, version table in its own schema.

A service's ``migrations/env.py`` is three lines: import its metadata and settings, then
``run_env(metadata=..., settings=...)``. ``upgrade()`` runs a history programmatically (the
CLI's ``db migrate`` and the test fixtures use it; it must not be called from a running
event loop because ``env.py`` uses ``asyncio.run``).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command, context, op
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import MetaData, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from tessera.common.settings import ServiceSettings

__all__ = [
    "alembic_config",
    "create_messaging_tables_v1",
    "downgrade_messaging_tables_v2",
    "drop_messaging_tables_v1",
    "head_revision",
    "known_revisions",
    "run_env",
    "upgrade",
    "upgrade_messaging_tables_v2",
]


def create_messaging_tables_v1(schema: str) -> None:
    """Create the outbox and inbox tables, layout v1, in ``schema`` (inside a migration).

    Frozen on purpose: a migration must do tomorrow what it did today, so a later layout is
    a new function used by a new revision, never an edit of this one.
    """
    op.create_table(
        "inbox",
        sa.Column("event_id", sa.UUID(), nullable=False),
        sa.Column("consumer", sa.String(length=200), nullable=False),
        sa.Column("event_type", sa.String(length=200), nullable=False),
        sa.Column(
            "processed_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("event_id", "consumer", name="pk_inbox"),
        schema=schema,
    )
    op.create_table(
        "outbox",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.Column("event_id", sa.UUID(), nullable=False),
        sa.Column("event_type", sa.String(length=200), nullable=False),
        sa.Column("routing_key", sa.String(length=255), nullable=False),
        sa.Column("payload", sa.dialects.postgresql.JSONB(), nullable=False),
        sa.Column(
            "headers",
            sa.dialects.postgresql.JSONB(),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("attempts", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_outbox"),
        sa.UniqueConstraint("event_id", name="uq_outbox_event_id"),
        schema=schema,
    )
    op.create_index(
        "ix_outbox_unsent",
        "outbox",
        ["id"],
        unique=False,
        schema=schema,
        postgresql_where=sa.text("sent_at IS NULL"),
    )


def drop_messaging_tables_v1(schema: str) -> None:
    op.drop_index("ix_outbox_unsent", table_name="outbox", schema=schema)
    op.drop_table("outbox", schema=schema)
    op.drop_table("inbox", schema=schema)


def upgrade_messaging_tables_v2(schema: str) -> None:
    """Outbox layout v2: each row has its own next attempt (also the claim's lease) and can
    be parked; sent rows are found for purging by their own index.

    Expand-only: the columns have defaults, so a v1 relay still running during a rolling
    deploy keeps working on the new layout. Frozen, like v1.
    """
    op.add_column(
        "outbox",
        sa.Column(
            "next_attempt_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        schema=schema,
    )
    op.add_column(
        "outbox", sa.Column("parked_at", sa.DateTime(timezone=True), nullable=True), schema=schema
    )
    op.drop_index("ix_outbox_unsent", table_name="outbox", schema=schema)
    op.create_index(
        "ix_outbox_due",
        "outbox",
        ["next_attempt_at", "id"],
        unique=False,
        schema=schema,
        postgresql_where=sa.text("sent_at IS NULL AND parked_at IS NULL"),
    )
    op.create_index(
        "ix_outbox_sent",
        "outbox",
        ["sent_at"],
        unique=False,
        schema=schema,
        postgresql_where=sa.text("sent_at IS NOT NULL"),
    )


def downgrade_messaging_tables_v2(schema: str) -> None:
    op.drop_index("ix_outbox_sent", table_name="outbox", schema=schema)
    op.drop_index("ix_outbox_due", table_name="outbox", schema=schema)
    op.create_index(
        "ix_outbox_unsent",
        "outbox",
        ["id"],
        unique=False,
        schema=schema,
        postgresql_where=sa.text("sent_at IS NULL"),
    )
    op.drop_column("outbox", "parked_at", schema=schema)
    op.drop_column("outbox", "next_attempt_at", schema=schema)


def alembic_config(migrations_dir: Path, settings: ServiceSettings) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(migrations_dir))
    cfg.attributes["settings"] = settings
    return cfg


def head_revision(migrations_dir: Path) -> str | None:
    return ScriptDirectory(str(migrations_dir)).get_current_head()


def known_revisions(migrations_dir: Path) -> frozenset[str]:
    return frozenset(r.revision for r in ScriptDirectory(str(migrations_dir)).walk_revisions())


def upgrade(migrations_dir: Path, settings: ServiceSettings, revision: str = "head") -> None:
    command.upgrade(alembic_config(migrations_dir, settings), revision)


def run_env(*, metadata: MetaData, settings_cls: type[ServiceSettings]) -> None:
    """Body of every service's ``env.py``."""
    settings: ServiceSettings = context.config.attributes.get("settings") or settings_cls()
    schema = settings.schema_name

    def include_name(name: str | None, type_: str, parent_names: Any) -> bool:
        if type_ == "schema":
            return name == schema
        return True

    def configure(**kwargs: Any) -> None:
        context.configure(
            target_metadata=metadata,
            version_table_schema=schema,
            include_schemas=True,
            include_name=include_name,
            compare_type=True,
            **kwargs,
        )

    if context.is_offline_mode():
        configure(url=settings.database.async_url(), literal_binds=True)
        with context.begin_transaction():
            context.run_migrations()
        return

    def migrate(connection: Connection) -> None:
        exists = connection.scalar(
            text("SELECT 1 FROM pg_namespace WHERE nspname = :s"), {"s": schema}
        )
        if not exists:
            connection.execute(text(f'CREATE SCHEMA "{schema}"'))
        configure(connection=connection)
        with context.begin_transaction():
            context.run_migrations()

    async def run() -> None:
        # not the service's schema (the role's default): Alembic would take it for the
        # default schema and never match the tables the metadata names explicitly
        engine = create_async_engine(
            settings.database.async_url(),
            connect_args={"server_settings": {"search_path": "public"}},
        )
        try:
            async with engine.begin() as conn:
                await conn.run_sync(migrate)
        finally:
            await engine.dispose()

    asyncio.run(run())
