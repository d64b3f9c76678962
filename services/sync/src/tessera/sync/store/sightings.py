"""SQL for MISP's separate sighting push (``Sighting::pushSightings`` and the two routes it
calls): which events have sightings newer here than a remote's copy, which of an event's
sightings a remote's organisation may be sent, which sighting uuids are known here, and
sightings saved by uuid. asyncpg, inside the caller's transaction; nothing here commits."""

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
    "sighting_push_events",
    "sighting_uuids_to_push",
    "sightings_to_push",
    "visible_attribute_ids",
]

Conn = Any


async def sighting_push_events(
    conn: Conn, entries: Sequence[tuple[UUID, int]], *, event_uuid: UUID | None = None
) -> list[Any]:
    """Of the remote's ``(event uuid, sighting_timestamp)``: the local events whose
    ``sighting_timestamp`` is newer (MISP's rule: its own event index against the remote's),
    only ``event_uuid`` when given; each with the columns the push rules and the
    distribution rules read (those of :func:`exchange.push_candidates`) and its holder
    (``org_id``), which MISP's sighting policy reads."""
    if not entries:
        return []
    return list(
        await conn.fetch(
            """
            SELECT e.id, e.uuid, e.org_id, e.timestamp, e.distribution, e.sharing_group_id,
                e.orgc_id, e.source_server_id, c.uuid AS orgc_uuid, c.name AS orgc_name,
                COALESCE((SELECT array_agg(t.name) FROM event_tags et
                          JOIN tags t ON t.id = et.tag_id
                          WHERE et.event_id = e.id AND NOT et.local), '{}') AS tag_names,
                COALESCE((SELECT array_agg(t.id) FROM event_tags et
                          JOIN tags t ON t.id = et.tag_id
                          WHERE et.event_id = e.id AND NOT et.local), '{}') AS tag_ids
            FROM unnest($1::uuid[], $2::bigint[]) AS r(uuid, sighting_timestamp)
            JOIN events e ON e.uuid = r.uuid
            JOIN organisations c ON c.id = e.orgc_id
            WHERE e.sighting_timestamp > 0 AND e.sighting_timestamp > r.sighting_timestamp
              AND ($3::uuid IS NULL OR e.uuid = $3)
            ORDER BY e.id
            """,
            [e[0] for e in entries],
            [e[1] for e in entries],
            event_uuid,
        )
    )


async def sighting_uuids_to_push(
    conn: Conn, event_id: int, *, org_id: int | None, every: bool, after: UUID | None, limit: int
) -> list[UUID]:
    """One batch of the event's sighting uuids, in uuid order after ``after``: all of them
    (``every``) or only those of ``org_id``."""
    rows = await conn.fetch(
        "SELECT uuid FROM sightings WHERE event_id = $1 AND ($2 OR org_id = $3) "
        "AND ($4::uuid IS NULL OR uuid > $4) ORDER BY uuid LIMIT $5",
        event_id, every, org_id, after, limit,
    )  # fmt: skip
    return [r["uuid"] for r in rows]


async def sightings_to_push(conn: Conn, event_id: int, uuids: Sequence[UUID]) -> list[Any]:
    """The event's sightings of ``uuids``, with their attribute's uuid and their
    organisation (``og_*``, None for a sighting of no organisation)."""
    return list(
        await conn.fetch(
            "SELECT s.*, a.uuid AS attribute_uuid, og.id AS og_id, og.uuid AS og_uuid, "
            "og.name AS og_name FROM sightings s JOIN attributes a ON a.id = s.attribute_id "
            "LEFT JOIN organisations og ON og.id = s.org_id "
            "WHERE s.event_id = $1 AND s.uuid = ANY($2::uuid[]) ORDER BY s.uuid",
            event_id,
            list(uuids),
        )
    )


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
