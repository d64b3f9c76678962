"""Database access: one async engine per service, bound to its own schema and role.

A :class:`UnitOfWork` is one transaction: it rolls back unless ``commit()`` is called, and
events appended with ``publish()`` are written to the service's outbox in that same
transaction. Only use cases (``service.py``) commit.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self

from sqlalchemy import MetaData, insert, text
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from tessera.common.settings import ServiceSettings

if TYPE_CHECKING:
    from tessera.common.messaging.envelope import Event
    from tessera.common.messaging.outbox import Outbox

__all__ = ["UnitOfWork", "create_engine", "make_metadata", "schema_is_migrated"]


def make_metadata(schema: str) -> MetaData:
    """A service's own metadata, bound to its schema (never share one across services)."""
    return MetaData(
        schema=schema,
        naming_convention={
            "ix": "ix_%(table_name)s_%(column_0_N_name)s",
            "uq": "uq_%(table_name)s_%(column_0_N_name)s",
            "ck": "ck_%(table_name)s_%(constraint_name)s",
            "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
            "pk": "pk_%(table_name)s",
        },
    )


def create_engine(settings: ServiceSettings) -> AsyncEngine:
    """The service's engine; ``search_path`` is its own schema only."""
    db = settings.database
    return create_async_engine(
        db.async_url(),
        pool_size=db.pool_size,
        max_overflow=db.max_overflow,
        pool_pre_ping=True,
        hide_parameters=True,  # errors are logged: keep hashes and tokens out of them
        connect_args={
            "server_settings": {
                "search_path": settings.schema_name,
                "statement_timeout": str(db.statement_timeout_ms),
                "application_name": f"tessera-{settings.service_name}",
            }
        },
    )


class UnitOfWork:
    """One transaction; ``async with uow:`` opens it, leaving without ``commit()`` rolls back."""

    session: AsyncSession

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        *,
        outbox: Outbox | None = None,
        on_commit: Callable[[], None] | None = None,
    ) -> None:
        self._sessions = sessions
        self._outbox = outbox
        self._on_commit = on_commit
        self._pending: list[dict[str, Any]] = []

    async def __aenter__(self) -> Self:
        self.session = self._sessions()
        self._pending = []
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        # close() rolls back an uncommitted transaction without expiring loaded objects,
        # so what a use case read stays readable after it returns
        self._pending = []
        await asyncio.shield(self.session.close())

    def publish(self, event: Event, *, subject: str) -> None:
        """Append ``event`` to the outbox; it is written with the commit, or not at all."""
        if self._outbox is None:
            raise RuntimeError("this unit of work has no outbox")
        self._pending.append(self._outbox.row_for(event, subject=subject))

    async def commit(self) -> None:
        if self._pending and self._outbox is not None:
            await self.session.execute(insert(self._outbox.table), self._pending)
        await self.session.commit()
        published = bool(self._pending)
        self._pending = []
        if published and self._outbox is not None:
            self._outbox.notify()
        if self._on_commit is not None:
            self._on_commit()

    async def rollback(self) -> None:
        await self.session.rollback()
        self._pending = []


async def schema_is_migrated(
    engine: AsyncEngine,
    schema: str,
    head: str | None,
    *,
    known: frozenset[str] | None = None,
) -> str | None:
    """Return why the schema is behind ``head``, or None when the code can run on it.

    ``known`` is every revision of the code's history: a schema at a revision the code does
    not know was migrated by a newer release (expand/contract during a rolling deploy), so
    the older code still starts; a schema at an older known revision is behind and refused.
    """
    async with engine.connect() as conn:
        exists = await conn.scalar(
            text("SELECT to_regclass(:name)"), {"name": f"{schema}.alembic_version"}
        )
        if exists is None:
            return f"schema {schema!r} has no migrations applied"
        current = await conn.scalar(
            text(f'SELECT version_num FROM "{schema}".alembic_version')  # noqa: S608 (our schema name)
        )
    if head is None or current == head:
        return None
    if known is not None and current not in known:
        return None  # ahead of this code: a newer release migrated it
    return f"schema {schema!r} is at revision {current}, the code needs {head}"
