"""SQL for MISP's separate sighting push (``Sighting::pushSightings`` and the two routes it
calls): which sighting uuids are known here, and sightings saved by uuid. asyncpg, inside
the caller's transaction; nothing here commits."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any
from uuid import UUID

from tessera.sync import access
from tessera.sync.viewer import Viewer

__all__ = [
    "bump_sighting_timestamp",
    "delete_expirations",
    "insert_sightings",
    "known_sighting_uuids",
    "visible_attribute_ids",
]

Conn = Any


async def known_sighting_uuids(
    conn: Conn, uuids: Sequence[UUID], *, event_id: int | None = None
) -> list[UUID]:
    """Which of ``uuids`` are sightings here (of the event ``event_id``, when given)."""
    rows = await conn.fetch(
        "SELECT uuid FROM sightings WHERE uuid = ANY($1::uuid[]) "
        "AND ($2::bigint IS NULL OR event_id = $2) ORDER BY uuid",
        list(uuids),
        event_id,
    )
    return [r["uuid"] for r in rows]


async def visible_attribute_ids(
    conn: Conn, viewer: Viewer, event_id: int, uuids: Collection[UUID]
) -> dict[UUID, int]:
    """The attributes of the event among ``uuids`` that the viewer sees (itself, and its
    object), deleted ones too: uuid → id."""
    if not uuids:
        return {}
    seen, args = access.element_filter(viewer, alias="a", event_alias="e", first_param=1)
    object_seen, _ = access.element_filter(viewer, alias="o", event_alias="e", first_param=1)
    first = len(args) + 1
    rows = await conn.fetch(
        "SELECT a.id, a.uuid FROM attributes a JOIN events e ON e.id = a.event_id "  # noqa: S608
        f"LEFT JOIN objects o ON o.id = a.object_id WHERE a.event_id = ${first} "
        f"AND a.uuid = ANY(${first + 1}::uuid[]) AND {seen} AND (o.id IS NULL OR {object_seen})",
        *args, event_id, list(uuids),
    )  # fmt: skip
    return {r["uuid"]: int(r["id"]) for r in rows}


async def delete_expirations(conn: Conn, *, org_id: int, attribute_id: int) -> None:
    """An organisation's expiration (type 2) of an attribute, replaced by a newer one."""
    await conn.execute(
        "DELETE FROM sightings WHERE org_id = $1 AND type = 2 AND attribute_id = $2",
        org_id,
        attribute_id,
    )


async def insert_sightings(conn: Conn, rows: Sequence[dict[str, Any]]) -> int:
    """Sightings (``uuid, attribute_id, event_id, org_id, date_sighting, source, type``);
    one whose uuid is known already, here or by a concurrent writer, is left out. How many
    were written."""
    if not rows:
        return 0
    written = await conn.fetch(
        """
        INSERT INTO sightings (uuid, attribute_id, event_id, org_id, date_sighting, source, type)
        SELECT * FROM unnest($1::uuid[], $2::bigint[], $3::bigint[], $4::bigint[],
            $5::bigint[], $6::text[], $7::smallint[])
        ON CONFLICT (uuid) DO NOTHING RETURNING id
        """,
        *([r[k] for r in rows] for k in ("uuid", "attribute_id", "event_id", "org_id",
                                          "date_sighting", "source", "type")),
    )  # fmt: skip
    return len(written)


async def bump_sighting_timestamp(conn: Conn, event_id: int, *, now: int) -> None:
    """The event's sightings changed (MISP's ``Event::publishSightings``): a push compares
    this with a remote's to know whether the remote may lack some."""
    await conn.execute(
        "UPDATE events SET sighting_timestamp = GREATEST(sighting_timestamp, $2) WHERE id = $1",
        event_id,
        now,
    )
