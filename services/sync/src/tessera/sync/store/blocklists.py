"""SQL for MISP's two blocklists, ``event_blocklists`` and ``org_blocklists``: one shape
(:class:`Blocklist` names the table, the target's uuid column and the free-text fields), so
one set of queries serves both."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

__all__ = ["EVENTS", "ORGS", "Blocklist"]

Conn = Any


@dataclass(frozen=True)
class Blocklist:
    table: str
    target: str
    """the uuid column: ``event_uuid``, ``org_uuid``"""
    fields: tuple[str, ...]
    """the free-text columns, as MISP names them (its ``blocklistFields`` but the uuid)"""
    model: str
    """MISP's model name: the wrapper of an edited entry"""
    controller: str

    @property
    def _columns(self) -> str:
        return ", ".join(("id", self.target, *self.fields, "created_at"))

    async def page(self, conn: Conn, *, limit: int, offset: int) -> list[Any]:
        """Newest first, as MISP's index orders them."""
        return list(
            await conn.fetch(
                f"SELECT {self._columns} FROM {self.table} "  # noqa: S608
                "ORDER BY created_at DESC, id DESC LIMIT $1 OFFSET $2",
                limit,
                offset,
            )
        )

    async def add(self, conn: Conn, uuid: UUID, values: dict[str, str], now: datetime) -> bool:
        """False when the uuid is listed already (MISP's "already blocklisted")."""
        names = [self.target, *self.fields, "created_at"]
        slots = ", ".join(f"${i}" for i in range(1, len(names) + 1))
        added = await conn.fetchval(
            f"INSERT INTO {self.table} ({', '.join(names)}) VALUES ({slots}) "  # noqa: S608
            f"ON CONFLICT ({self.target}) DO NOTHING RETURNING true",
            uuid,
            *(values.get(f, "") for f in self.fields),
            now,
        )
        return added is True

    async def find(self, conn: Conn, ident: int | UUID) -> Any:
        """The entry by its id or its target's uuid."""
        column = self.target if isinstance(ident, UUID) else "id"
        return await conn.fetchrow(
            f"SELECT {self._columns} FROM {self.table} WHERE {column} = $1",  # noqa: S608
            ident,
        )

    async def update(self, conn: Conn, entry_id: int, values: dict[str, str]) -> None:
        names = [f for f in self.fields if f in values]
        if not names:
            return
        sets = ", ".join(f"{n} = ${i}" for i, n in enumerate(names, start=2))
        await conn.execute(
            f"UPDATE {self.table} SET {sets} WHERE id = $1",  # noqa: S608
            entry_id,
            *(values[n] for n in names),
        )

    async def delete(self, conn: Conn, entry_id: int) -> None:
        await conn.execute(f"DELETE FROM {self.table} WHERE id = $1", entry_id)  # noqa: S608


EVENTS = Blocklist(
    table="event_blocklists", target="event_uuid", fields=("comment", "event_info", "event_orgc"),
    model="EventBlocklist", controller="eventBlocklists",
)  # fmt: skip
ORGS = Blocklist(
    table="org_blocklists", target="org_uuid", fields=("comment", "org_name"),
    model="OrgBlocklist", controller="orgBlocklists",
)  # fmt: skip
