"""Database access: one async engine per service, bound to its own schema and role.

A :class:`UnitOfWork` is one transaction: it rolls back unless ``commit()`` is called, and
events appended with ``publish()`` are written to the service's outbox in that same
transaction. Only use cases (``service.py``) commit.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self

from sqlalchemy import MetaData, Table, event, text
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import Session

from tessera.common.settings import ServiceSettings

if TYPE_CHECKING:
    from tessera.common.messaging.envelope import Event
    from tessera.common.messaging.outbox import Outbox

__all__ = [
    "UnitOfWork",
    "create_engine",
    "driver_in_transaction",
    "make_metadata",
    "pooled_driver",
    "qualified_name",
    "reading_sessions",
    "schema_is_migrated",
]


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
        # no pre-ping: with asyncpg it is BEGIN; SELECT; ROLLBACK before every checkout,
        # three round trips a request. A connection the server dropped fails its request
        # instead (503 database_unavailable, see http.py) and the pool is invalidated.
        pool_pre_ping=False,
        pool_recycle=1800,
        hide_parameters=True,  # errors are logged: keep hashes and tokens out of them
        connect_args={
            "server_settings": {
                "search_path": settings.schema_name,
                "statement_timeout": str(db.statement_timeout_ms),
                "application_name": f"tessera-{settings.service_name}",
            }
        },
    )


def reading_sessions(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions for reads only, on the same pool: each statement runs in its own implicit
    transaction, so a read costs no BEGIN and no ROLLBACK round trip; flushing is refused."""
    return async_sessionmaker(
        engine.execution_options(isolation_level="AUTOCOMMIT"),
        expire_on_commit=False,
        autoflush=False,
        sync_session_class=_ReadingSession,
    )


class _ReadingSession(Session):
    """The sync session behind :func:`reading_sessions`: it refuses to flush."""


@event.listens_for(_ReadingSession, "before_flush")
def _refuse_flush(session: Session, *_: Any) -> None:
    raise RuntimeError("a reading session writes nothing: use `async with uow:` to change rows")


def qualified_name(table: Table) -> str:
    """``"schema"."name"``, quoted, for the kernel's SQL written for asyncpg."""
    name = f'"{table.name}"'
    return f'"{table.schema}".{name}' if table.schema else name


@contextlib.asynccontextmanager
async def pooled_driver(engine: AsyncEngine) -> AsyncIterator[Any]:
    """A pooled asyncpg connection, outside any transaction: each statement commits on its
    own. Checked out and returned through an ``AsyncConnection``, so that a connection the
    pool has no room for (an overflow one) is closed with an ``await``, as asyncpg needs."""
    async with engine.connect() as connection:
        raw = await connection.get_raw_connection()
        yield raw.driver_connection


async def driver_in_transaction(session: AsyncSession) -> Any:
    """The asyncpg connection of ``session``'s transaction, with BEGIN sent.

    For the kernel's own statements on the event path (outbox insert, inbox claim): asyncpg
    directly costs a fraction of an ORM ``execute`` (measured: 0.31 ms against 0.88 ms of CPU
    for the inbox claim) and its rows commit or roll back with the session's. SQLAlchemy's
    asyncpg adapter sends BEGIN lazily, before its own first statement; this sends it now
    (the adapter's ``_start_transaction`` under its mutex, as its cursor does), or a
    statement sent here first would run outside the transaction and commit at once.
    ``tests/test_inbox.py`` guards that: a claim rolled back with its effect is gone.
    """
    connection = await session.connection()
    raw = await connection.get_raw_connection()
    adapted: Any = raw.dbapi_connection
    async with adapted._execute_mutex:
        if adapted._transaction is None:
            await adapted._start_transaction()
    return raw.driver_connection


class UnitOfWork:
    """One transaction; ``async with uow:`` opens it, leaving without ``commit()`` rolls back.

    ``async with uow.reading() as session:`` is for use cases that only read (one statement,
    or several that need not see one snapshot): no transaction, no commit.
    """

    session: AsyncSession

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        *,
        outbox: Outbox | None = None,
        readers: async_sessionmaker[AsyncSession] | None = None,
        on_commit: Callable[[], None] | None = None,
    ) -> None:
        self._sessions = sessions
        self._readers = readers
        self._outbox = outbox
        self._on_commit = on_commit
        self._pending: list[dict[str, Any]] = []

    @contextlib.asynccontextmanager
    async def reading(self) -> AsyncIterator[AsyncSession]:
        """A session for reads (in autocommit mode when the runtime gave one)."""
        async with (self._readers or self._sessions)() as session:
            yield session

    @contextlib.asynccontextmanager
    async def driver(self) -> AsyncIterator[Any]:
        """The pool's asyncpg connection itself, outside any transaction, for the hottest
        reads: one ``fetchrow`` costs a sixth of the same read through an ORM session
        (measured: 0.11 ms against 0.70 ms of CPU). SQL only in ``models.py`` helpers. A
        write here commits at once (or with ``driver.transaction()``), outside the unit of
        work and its outbox: only for writes that publish nothing, on a hot path (the
        mailer's delivery steps)."""
        async with pooled_driver((self._readers or self._sessions).kw["bind"]) as driver:
            yield driver

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

    def publish_json(self, kind: type[Event], data: str, *, subject: str) -> None:
        """Append an event of ``kind`` whose data is already JSON text (see
        ``Outbox.row_for_json``): for large events the producer has serialised anyway."""
        if self._outbox is None:
            raise RuntimeError("this unit of work has no outbox")
        self._pending.append(self._outbox.row_for_json(kind, data, subject=subject))

    async def commit(self) -> None:
        if self._pending and self._outbox is not None:
            driver = await driver_in_transaction(self.session)
            await self._outbox.insert(driver, self._pending)
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
