"""Writing a parsed event (new, edited, or synced in): its row, its parts, its sightings, the
blocklists. asyncpg, inside the caller's transaction; nothing here commits.

Every part is upserted by ``uuid`` with MISP's rule: a part is replaced only by a newer one
(its ``timestamp``), never by an older copy, unless ``force`` (a user's edit, which takes the
time of the edit); a part whose uuid belongs to another event is never touched. Rows go in as
arrays through ``unnest`` in one statement per kind, so 150,000 attributes are one round trip
per batch, not 150,000; a large pulled event is written batch by batch
(:func:`upsert_attributes` takes any slice).
"""

from __future__ import annotations

import operator
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from tessera.sync.wire import (
    AttributeIn,
    EventIn,
    EventReportIn,
    ObjectIn,
    SharingGroupIn,
    SightingIn,
)

__all__ = [
    "Saved",
    "attributes_by_uuid",
    "block_event",
    "blocked_event",
    "blocked_org",
    "duplicate_attributes",
    "event_by_ident",
    "insert_event_row",
    "objects_by_uuid",
    "refresh_event",
    "upsert_attributes",
    "upsert_event_row",
    "upsert_objects",
    "upsert_references",
    "upsert_reports",
    "upsert_sharing_group",
    "upsert_sightings",
]

Conn = Any


@dataclass
class Saved:
    """What a write did."""

    event_id: int
    created: bool
    attributes: int = 0
    skipped_older: int = 0
    ids: dict[UUID, int] = field(default_factory=dict)


async def event_by_ident(conn: Conn, ident: str) -> Any:
    """The event row for a numeric id or a uuid (None when neither)."""
    if ident.isdigit():
        return await conn.fetchrow("SELECT * FROM events WHERE id = $1", int(ident))
    try:
        key = UUID(ident)
    except ValueError:
        return None
    return await conn.fetchrow("SELECT * FROM events WHERE uuid = $1", key)


async def upsert_sharing_group(
    conn: Conn, group: SharingGroupIn, *, now: Any, fallback_org_id: int
) -> int:
    """A sharing group an event carries (captured on sync, by uuid), with its organisations;
    its local id."""
    from tessera.sync import directory

    owner = fallback_org_id
    if group.organisation is not None and group.organisation.uuid is not None:
        owner = await directory.ensure_organisation(
            conn,
            group.organisation.uuid,
            group.organisation.name or str(group.organisation.uuid),
            now,
        )
    row = await conn.fetchrow(
        """
        INSERT INTO sharing_groups (uuid, name, releasability, description, org_id, active,
            roaming, local, created_at, updated_at)
        VALUES ($1, $2, $3, $4, $5, $6, $7, false, $8, $8)
        ON CONFLICT (uuid) DO UPDATE SET name = excluded.name,
            releasability = excluded.releasability, description = excluded.description,
            roaming = excluded.roaming, updated_at = $8
        RETURNING id
        """,
        group.uuid, group.name or str(group.uuid), group.releasability, group.description,
        owner, group.active, group.roaming, now,
    )  # fmt: skip
    group_id = int(row["id"])
    for member in group.orgs:
        if member.organisation.uuid is None:
            continue
        org_id = await directory.ensure_organisation(
            conn,
            member.organisation.uuid,
            member.organisation.name or str(member.organisation.uuid),
            now,
        )
        await conn.execute(
            "INSERT INTO sharing_group_orgs (sharing_group_id, org_id, extend) VALUES ($1, $2, $3) "
            "ON CONFLICT (sharing_group_id, org_id) DO UPDATE SET extend = excluded.extend",
            group_id,
            org_id,
            member.extend,
        )
    return group_id


async def upsert_event_row(
    conn: Conn,
    event: EventIn,
    *,
    org_id: int,
    orgc_id: int,
    user_id: int | None,
    sharing_group_id: int | None,
    now: int,
    force: bool = False,
) -> tuple[int, bool, int | None]:
    """Insert or update the event's own row: ``(id, created, previous timestamp)``. An
    existing event is changed only by a newer timestamp, unless ``force`` (a user's edit,
    which takes the time of the edit)."""
    columns = event.columns(now=now)
    if force:
        columns["timestamp"] = now
    row = await conn.fetchrow(
        """
        WITH before AS (SELECT id, timestamp FROM events WHERE uuid = $1)
        INSERT INTO events AS e (uuid, org_id, orgc_id, user_id, date, info, threat_level_id,
            analysis, distribution, sharing_group_id, published, publish_timestamp, timestamp,
            locked, protected, disable_correlation, extends_uuid)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)
        ON CONFLICT (uuid) DO UPDATE SET date = excluded.date, info = excluded.info,
            threat_level_id = excluded.threat_level_id, analysis = excluded.analysis,
            distribution = excluded.distribution, sharing_group_id = excluded.sharing_group_id,
            published = excluded.published, publish_timestamp = excluded.publish_timestamp,
            timestamp = excluded.timestamp, locked = excluded.locked,
            protected = excluded.protected, disable_correlation = excluded.disable_correlation,
            extends_uuid = excluded.extends_uuid
        WHERE $18 OR e.timestamp < excluded.timestamp
        RETURNING id, (SELECT timestamp FROM before) AS previous
        """,
        columns["uuid"], org_id, orgc_id, user_id, columns["date"], columns["info"],
        columns["threat_level_id"], columns["analysis"], columns["distribution"],
        sharing_group_id, columns["published"], columns["publish_timestamp"],
        columns["timestamp"], columns["locked"], columns["protected"],
        columns["disable_correlation"], columns["extends_uuid"], force,
    )  # fmt: skip
    if row is None:  # exists and is as new: nothing changed
        existing = await conn.fetchrow(
            "SELECT id, timestamp FROM events WHERE uuid = $1", columns["uuid"]
        )
        return int(existing["id"]), False, int(existing["timestamp"])
    previous = row["previous"]
    return int(row["id"]), previous is None, None if previous is None else int(previous)


async def insert_event_row(
    conn: Conn,
    event: EventIn,
    *,
    org_id: int,
    orgc_id: int,
    user_id: int | None,
    sharing_group_id: int | None,
    now: int,
) -> int | None:
    """A new event's row (``events/add``): its id, or None when an event with its uuid
    exists already (then nothing is written, whatever its timestamp)."""
    columns = event.columns(now=now)
    found = await conn.fetchval(
        """
        INSERT INTO events (uuid, org_id, orgc_id, user_id, date, info, threat_level_id,
            analysis, distribution, sharing_group_id, published, publish_timestamp, timestamp,
            locked, protected, disable_correlation, extends_uuid)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)
        ON CONFLICT (uuid) DO NOTHING
        RETURNING id
        """,
        columns["uuid"], org_id, orgc_id, user_id, columns["date"], columns["info"],
        columns["threat_level_id"], columns["analysis"], columns["distribution"],
        sharing_group_id, columns["published"], columns["publish_timestamp"],
        columns["timestamp"], columns["locked"], columns["protected"],
        columns["disable_correlation"], columns["extends_uuid"],
    )  # fmt: skip
    return None if found is None else int(found)


_ATTRIBUTE_ARRAYS = (
    "uuid[]", "bigint[]", "text[]", "text[]", "text[]", "text[]", "text[]", "boolean[]",
    "text[]", "smallint[]", "bigint[]", "bigint[]", "bigint[]", "bigint[]", "boolean[]",
    "boolean[]",
)  # fmt: skip
_ATTRIBUTE_COLUMNS = (
    "uuid", "object_id", "object_relation", "category", "type", "value1", "value2", "to_ids",
    "comment", "distribution", "sharing_group_id", "timestamp", "first_seen", "last_seen",
    "deleted", "disable_correlation",
)  # fmt: skip
_attribute_row = operator.itemgetter(*_ATTRIBUTE_COLUMNS)
"""a row's values in the order of ``_ATTRIBUTE_COLUMNS``"""
_UPSERT_ATTRIBUTES = f"""
INSERT INTO attributes AS a (event_id, {", ".join(_ATTRIBUTE_COLUMNS)})
SELECT $1, * FROM unnest({", ".join(f"${i + 2}::{t}" for i, t in enumerate(_ATTRIBUTE_ARRAYS))})
ON CONFLICT (uuid) DO UPDATE SET {
    ", ".join(f"{c} = excluded.{c}" for c in _ATTRIBUTE_COLUMNS if c != "uuid")
}
WHERE a.event_id = excluded.event_id AND (a.timestamp < excluded.timestamp OR $18)
RETURNING uuid, id
"""  # noqa: S608 (our constants)


async def upsert_attributes(
    conn: Conn,
    event_id: int,
    attributes: Sequence[AttributeIn],
    *,
    now: int,
    object_ids: dict[UUID, int] | None = None,
    object_of: dict[UUID, UUID] | None = None,
    sharing_groups: dict[UUID, int] | None = None,
    force: bool = False,
) -> dict[UUID, int]:
    """Insert new attributes and replace older copies (by uuid, in this event); the ids of
    those written. ``object_of`` maps an attribute's uuid to its object's, ``object_ids`` an
    object's uuid to its id."""
    if not attributes:
        return {}
    objects, owners, groups = object_ids or {}, object_of or {}, sharing_groups or {}
    ordered = []
    for attribute in attributes:
        row = attribute.columns(now=now)
        owner = owners.get(attribute.uuid)
        row["object_id"] = None if owner is None else objects.get(owner)
        row["sharing_group_id"] = (
            groups.get(attribute.sharing_group.uuid)
            if attribute.sharing_group is not None
            else attribute.sharing_group_id
        )
        if force:
            row["timestamp"] = now
        ordered.append(_attribute_row(row))
    columns = [list(column) for column in zip(*ordered, strict=True)]
    rows = await conn.fetch(_UPSERT_ATTRIBUTES, event_id, *columns, force)
    return {r["uuid"]: int(r["id"]) for r in rows}


async def upsert_objects(
    conn: Conn,
    event_id: int,
    objects: Sequence[ObjectIn],
    *,
    now: int,
    sharing_groups: dict[UUID, int] | None = None,
    force: bool = False,
) -> dict[UUID, int]:
    """Objects by uuid (newer replaces older); the ids of every object of the payload
    (written or kept), so their attributes can point at them."""
    if not objects:
        return {}
    groups = sharing_groups or {}
    rows = [o.columns(now=now) for o in objects]
    if force:
        for row in rows:
            row["timestamp"] = now
    written = await conn.fetch(
        """
        INSERT INTO objects AS o (event_id, uuid, name, meta_category, description, template_uuid,
            template_version, comment, distribution, sharing_group_id, timestamp, first_seen,
            last_seen, deleted)
        SELECT $1, * FROM unnest($2::uuid[], $3::text[], $4::text[], $5::text[], $6::uuid[],
            $7::int[], $8::text[], $9::smallint[], $10::bigint[], $11::bigint[], $12::bigint[],
            $13::bigint[], $14::boolean[])
        ON CONFLICT (uuid) DO UPDATE SET name = excluded.name,
            meta_category = excluded.meta_category, description = excluded.description,
            template_uuid = excluded.template_uuid, template_version = excluded.template_version,
            comment = excluded.comment, distribution = excluded.distribution,
            sharing_group_id = excluded.sharing_group_id, timestamp = excluded.timestamp,
            first_seen = excluded.first_seen, last_seen = excluded.last_seen,
            deleted = excluded.deleted
        WHERE o.event_id = excluded.event_id AND (o.timestamp < excluded.timestamp OR $15)
        RETURNING uuid, id
        """,
        event_id,
        [r["uuid"] for r in rows], [r["name"] for r in rows], [r["meta_category"] for r in rows],
        [r["description"] for r in rows], [r["template_uuid"] for r in rows],
        [r["template_version"] for r in rows], [r["comment"] for r in rows],
        [r["distribution"] for r in rows],
        [groups.get(o.sharing_group.uuid) if o.sharing_group else o.sharing_group_id
         for o in objects],
        [r["timestamp"] for r in rows], [r["first_seen"] for r in rows],
        [r["last_seen"] for r in rows], [r["deleted"] for r in rows], force,
    )  # fmt: skip
    ids = {r["uuid"]: int(r["id"]) for r in written}
    missing = [o.uuid for o in objects if o.uuid not in ids]
    if missing:
        for found in await conn.fetch(
            "SELECT uuid, id FROM objects WHERE event_id = $1 AND uuid = ANY($2::uuid[])",
            event_id,
            missing,
        ):
            ids[found["uuid"]] = int(found["id"])
    return ids


async def upsert_references(
    conn: Conn, event_id: int, objects: Sequence[ObjectIn], object_ids: dict[UUID, int], *, now: int
) -> None:
    rows = [
        (object_ids[o.uuid], r.columns(now=now) | {"source_uuid": r.source_uuid or o.uuid})
        for o in objects
        if o.uuid in object_ids
        for r in o.references
    ]
    if not rows:
        return
    await conn.execute(
        """
        INSERT INTO object_references AS r (event_id, object_id, uuid, source_uuid,
            referenced_uuid, referenced_type, relationship_type, comment, timestamp, deleted)
        SELECT $1, * FROM unnest($2::bigint[], $3::uuid[], $4::uuid[], $5::uuid[], $6::smallint[],
            $7::text[], $8::text[], $9::bigint[], $10::boolean[])
        ON CONFLICT (uuid) DO UPDATE SET referenced_uuid = excluded.referenced_uuid,
            referenced_type = excluded.referenced_type,
            relationship_type = excluded.relationship_type, comment = excluded.comment,
            timestamp = excluded.timestamp, deleted = excluded.deleted
        WHERE r.event_id = excluded.event_id AND r.timestamp < excluded.timestamp
        """,
        event_id,
        [o for o, _ in rows], [c["uuid"] for _, c in rows], [c["source_uuid"] for _, c in rows],
        [c["referenced_uuid"] for _, c in rows], [c["referenced_type"] for _, c in rows],
        [c["relationship_type"] for _, c in rows], [c["comment"] for _, c in rows],
        [c["timestamp"] for _, c in rows], [c["deleted"] for _, c in rows],
    )  # fmt: skip


async def upsert_reports(
    conn: Conn, event_id: int, reports: Sequence[EventReportIn], *, now: int
) -> None:
    if not reports:
        return
    rows = [r.columns(now=now) for r in reports]
    await conn.execute(
        """
        INSERT INTO event_reports AS r (event_id, uuid, name, content, distribution,
            sharing_group_id, timestamp, deleted)
        SELECT $1, * FROM unnest($2::uuid[], $3::text[], $4::text[], $5::smallint[],
            $6::bigint[], $7::bigint[], $8::boolean[])
        ON CONFLICT (uuid) DO UPDATE SET name = excluded.name, content = excluded.content,
            distribution = excluded.distribution, sharing_group_id = excluded.sharing_group_id,
            timestamp = excluded.timestamp, deleted = excluded.deleted
        WHERE r.event_id = excluded.event_id AND r.timestamp < excluded.timestamp
        """,
        event_id,
        [r["uuid"] for r in rows], [r["name"] for r in rows], [r["content"] for r in rows],
        [r["distribution"] for r in rows], [x.sharing_group_id for x in reports],
        [r["timestamp"] for r in rows], [r["deleted"] for r in rows],
    )  # fmt: skip


async def upsert_sightings(
    conn: Conn,
    event_id: int,
    sightings: Sequence[tuple[int, SightingIn]],
    *,
    now: int,
    org_ids: dict[UUID, int] | None = None,
    default_org_id: int | None = None,
) -> int:
    """Sightings of the event's attributes, as ``(attribute id, sighting)`` pairs; one whose
    uuid is known already is left as it is (sightings never change). ``org_ids`` maps the
    uuid of the organisation a sighting names to its local id; without one it is
    ``default_org_id``'s. How many were written."""
    if not sightings:
        return 0
    orgs = org_ids or {}
    rows = [
        (
            attribute_id,
            s.columns(now=now),
            orgs.get(s.org.uuid, default_org_id)
            if s.org is not None and s.org.uuid is not None
            else default_org_id,
        )
        for attribute_id, s in sightings
    ]
    written = await conn.fetch(
        """
        INSERT INTO sightings (event_id, attribute_id, uuid, type, date_sighting, source, org_id)
        SELECT $1, * FROM unnest($2::bigint[], $3::uuid[], $4::smallint[], $5::bigint[],
            $6::text[], $7::bigint[])
        ON CONFLICT (uuid) DO NOTHING RETURNING id
        """,
        event_id, [a for a, _, _ in rows], [c["uuid"] for _, c, _ in rows],
        [c["type"] for _, c, _ in rows], [c["date_sighting"] for _, c, _ in rows],
        [c["source"] for _, c, _ in rows], [o for _, _, o in rows],
    )  # fmt: skip
    return len(written)


async def duplicate_attributes(
    conn: Conn, event_id: int, attributes: Sequence[AttributeIn]
) -> set[int]:
    """Which of ``attributes`` (by position) repeat a live attribute of the event outside any
    object: same type, category and value, another uuid (MISP's ``valueIsUnique``, which
    objects and deleted attributes escape)."""
    candidates = [
        (i, a) for i, a in enumerate(attributes) if not a.deleted and a.object_relation is None
    ]
    if not candidates:
        return set()
    rows = await conn.fetch(
        """
        SELECT x.i FROM unnest($2::int[], $3::uuid[], $4::text[], $5::text[], $6::text[],
            $7::text[]) AS x(i, u, t, c, v1, v2)
        WHERE EXISTS (SELECT 1 FROM attributes a WHERE a.event_id = $1 AND a.object_id IS NULL
            AND NOT a.deleted AND a.type = x.t AND a.category = x.c
            AND md5(a.value1) = md5(x.v1) AND md5(a.value2) = md5(x.v2)
            AND a.value1 = x.v1 AND a.value2 = x.v2 AND a.uuid <> x.u)
        """,
        event_id,
        [i for i, _ in candidates], [a.uuid for _, a in candidates],
        [a.type for _, a in candidates], [a.category for _, a in candidates],
        [a.value1 for _, a in candidates], [a.value2 for _, a in candidates],
    )  # fmt: skip
    return {int(r["i"]) for r in rows}


async def attributes_by_uuid(conn: Conn, uuids: Iterable[UUID]) -> dict[UUID, Any]:
    """The ``attributes`` rows of those uuids that exist (in any event)."""
    wanted = list(set(uuids))
    if not wanted:
        return {}
    rows = await conn.fetch("SELECT * FROM attributes WHERE uuid = ANY($1::uuid[])", wanted)
    return {r["uuid"]: r for r in rows}


async def objects_by_uuid(conn: Conn, uuids: Iterable[UUID]) -> dict[UUID, Any]:
    wanted = list(set(uuids))
    if not wanted:
        return {}
    rows = await conn.fetch("SELECT * FROM objects WHERE uuid = ANY($1::uuid[])", wanted)
    return {r["uuid"]: r for r in rows}


async def blocked_event(conn: Conn, event_uuid: UUID) -> bool:
    """The uuid is in ``event_blocklists`` (``MISP.enableEventBlocklisting``)."""
    found = await conn.fetchval("SELECT 1 FROM event_blocklists WHERE event_uuid = $1", event_uuid)
    return found is not None


async def blocked_org(conn: Conn, org_uuid: UUID) -> bool:
    found = await conn.fetchval("SELECT 1 FROM org_blocklists WHERE org_uuid = $1", org_uuid)
    return found is not None


async def block_event(
    conn: Conn, event_uuid: UUID, *, info: str, orgc_name: str, comment: str, now: Any
) -> None:
    """Put the uuid in ``event_blocklists``, so that no pull nor push brings it back."""
    await conn.execute(
        """
        INSERT INTO event_blocklists (event_uuid, event_info, event_orgc, comment, created_at)
        VALUES ($1, $2, $3, $4, $5) ON CONFLICT (event_uuid) DO NOTHING
        """,
        event_uuid,
        info,
        orgc_name[:255],
        comment,
        now,
    )


async def refresh_event(conn: Conn, event_id: int) -> int:
    """Keep ``attribute_count`` as MISP counts it (live attributes); the count."""
    count = await conn.fetchval(
        "UPDATE events SET attribute_count = (SELECT count(*) FROM attributes "
        "WHERE event_id = $1 AND NOT deleted) WHERE id = $1 RETURNING attribute_count",
        event_id,
    )
    return int(count or 0)
