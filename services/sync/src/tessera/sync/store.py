"""SQL for MISP events: writing a parsed event (new, edited, or synced in) and reading one back
for rendering. asyncpg, inside the caller's transaction; nothing here commits.

Every part is upserted by ``uuid`` with MISP's rule: a part is replaced only by a newer one
(its ``timestamp``), never by an older copy. Rows go in as arrays through ``unnest`` in one
statement per kind, so 150,000 attributes are one round trip per batch, not 150,000; a large
pulled event is written batch by batch (:func:`upsert_attributes` takes any slice).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from tessera.sync import access
from tessera.sync.viewer import Viewer
from tessera.sync.wire import (
    AttributeIn,
    EventIn,
    EventReportIn,
    ObjectIn,
    SharingGroupIn,
    SightingIn,
    TagIn,
    render_sharing_group,
)

__all__ = [
    "Saved",
    "attach_tags",
    "event_by_ident",
    "load_event",
    "refresh_event",
    "upsert_attributes",
    "upsert_event_row",
    "upsert_objects",
    "upsert_references",
    "upsert_reports",
    "upsert_sharing_group",
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
    columns: list[list[Any]] = [[] for _ in _ATTRIBUTE_COLUMNS]
    objects, owners, groups = object_ids or {}, object_of or {}, sharing_groups or {}
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
        for index, name in enumerate(_ATTRIBUTE_COLUMNS):
            columns[index].append(row[name])
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


async def tag_ids(
    conn: Conn, tags: Iterable[TagIn], *, create: bool = True, org_id: int | None = None
) -> dict[str, int]:
    """Tag ids by name (matched whatever its case, as ``Tag::captureTag``), creating the tags
    not known yet when ``create``. With ``org_id``, a tag restricted to another organisation
    is left out (a site admin passes None)."""
    wanted = {t.name: t for t in tags}
    if not wanted:
        return {}
    if create:
        rows = [t.columns() for t in wanted.values()]
        await conn.execute(
            """
            INSERT INTO tags (name, colour, exportable, hide_tag, local_only, numerical_value,
                is_galaxy)
            SELECT n, c, e, h, l, v, g FROM unnest($1::text[], $2::text[], $3::boolean[],
                $4::boolean[], $5::boolean[], $6::int[], $7::boolean[]) AS x(n, c, e, h, l, v, g)
            WHERE NOT EXISTS (SELECT 1 FROM tags WHERE lower(tags.name) = lower(x.n))
            ON CONFLICT (name) DO NOTHING
            """,
            [r["name"] for r in rows], [r["colour"] or "#ffffff" for r in rows],
            [r["exportable"] for r in rows], [r["hide_tag"] for r in rows],
            [r["local_only"] for r in rows], [r["numerical_value"] for r in rows],
            [r["is_galaxy"] for r in rows],
        )  # fmt: skip
    found = await conn.fetch(
        "SELECT DISTINCT ON (lower(name)) lower(name) AS key, id FROM tags "
        "WHERE lower(name) = ANY($1::text[]) AND ($2::bigint IS NULL OR org_id IS NULL "
        "OR org_id = $2) ORDER BY lower(name), id",
        [name.lower() for name in wanted],
        org_id,
    )
    by_key = {r["key"]: int(r["id"]) for r in found}
    return {name: by_key[name.lower()] for name in wanted if name.lower() in by_key}


async def attach_tags(
    conn: Conn,
    event_id: int,
    tags: Sequence[TagIn],
    *,
    attribute_id: int | None = None,
    create: bool = True,
    org_id: int | None = None,
) -> int:
    """Tag the event (or one of its attributes); a tag attached already stays as it is. How
    many links were made. ``create`` and ``org_id`` as for :func:`tag_ids`."""
    ids = await tag_ids(conn, tags, create=create, org_id=org_id)
    if not ids:
        return 0
    links = [(ids[t.name], t.local, t.relationship_type) for t in tags if t.name in ids]
    if attribute_id is None:
        made = await conn.fetch(
            """
            INSERT INTO event_tags (event_id, tag_id, local, relationship_type)
            SELECT $1, * FROM unnest($2::bigint[], $3::boolean[], $4::text[])
            ON CONFLICT (event_id, tag_id) DO NOTHING RETURNING id
            """,
            event_id, [t for t, _, _ in links], [local for _, local, _ in links],
            [r or "" for _, _, r in links],
        )  # fmt: skip
        return len(made)
    made = await conn.fetch(
        """
        INSERT INTO attribute_tags (attribute_id, event_id, tag_id, local, relationship_type)
        SELECT $1, $2, * FROM unnest($3::bigint[], $4::boolean[], $5::text[])
        ON CONFLICT (attribute_id, tag_id) DO NOTHING RETURNING id
        """,
        attribute_id, event_id, [t for t, _, _ in links], [local for _, local, _ in links],
        [r or "" for _, _, r in links],
    )  # fmt: skip
    return len(made)


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


async def attach_attribute_tags(
    conn: Conn,
    event_id: int,
    links: Sequence[tuple[int, TagIn]],
    *,
    create: bool = True,
    org_id: int | None = None,
) -> int:
    """Tag many attributes of the event at once, ``(attribute id, tag)`` pairs; links that
    exist already stay as they are. How many were made. ``create`` and ``org_id`` as for
    :func:`tag_ids`."""
    if not links:
        return 0
    ids = await tag_ids(conn, (tag for _, tag in links), create=create, org_id=org_id)
    rows = [(a, ids[t.name], t.local, t.relationship_type or "") for a, t in links
            if t.name in ids]  # fmt: skip
    if not rows:
        return 0
    made = await conn.fetch(
        """
        INSERT INTO attribute_tags (event_id, attribute_id, tag_id, local, relationship_type)
        SELECT $1, * FROM unnest($2::bigint[], $3::bigint[], $4::boolean[], $5::text[])
        ON CONFLICT (attribute_id, tag_id) DO NOTHING RETURNING id
        """,
        event_id, [r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows],
        [r[3] for r in rows],
    )  # fmt: skip
    return len(made)


async def refresh_event(conn: Conn, event_id: int) -> None:
    """Keep ``attribute_count`` as MISP counts it (live attributes)."""
    await conn.execute(
        "UPDATE events SET attribute_count = (SELECT count(*) FROM attributes "
        "WHERE event_id = $1 AND NOT deleted) WHERE id = $1",
        event_id,
    )


# --- reading ----------------------------------------------------------------------------------


def ident_condition(ident: str, *, alias: str, first_param: int) -> tuple[str, Any] | None:
    """``alias.id = $n`` for a numeric id, ``alias.uuid = $n`` for a uuid, and its argument;
    None when ``ident`` is neither (MISP answers that as an unknown id)."""
    if ident.isdigit():
        if int(ident) >= 2**63:
            return None
        return f"{alias}.id = ${first_param}", int(ident)
    try:
        return f"{alias}.uuid = ${first_param}", UUID(ident)
    except ValueError:
        return None


async def visible_event(conn: Conn, ident: str, viewer: Viewer) -> Any:
    """The ``events`` row for an id or uuid when the viewer may see it (None otherwise)."""
    condition = ident_condition(ident, alias="e", first_param=1)
    if condition is None:
        return None
    where, args = access.event_filter(viewer, alias="e", first_param=2)
    sql, key = condition
    return await conn.fetchrow(f"SELECT e.* FROM events e WHERE {sql} AND {where}",  # noqa: S608
                               key, *args)  # fmt: skip


async def visible_attribute(conn: Conn, ident: str, viewer: Viewer, *, deleted: bool) -> Any:
    """The ``attributes`` row for an id or uuid when the viewer may see it (its event, itself,
    its object), with its event's ``e_uuid``, ``e_org_id``, ``e_orgc_id``, ``e_locked`` and
    its object's ``o_uuid``; None otherwise. ``deleted``: a soft-deleted one too."""
    condition = ident_condition(ident, alias="a", first_param=1)
    if condition is None:
        return None
    sql, key = condition
    event_seen, args = access.event_filter(viewer, alias="e", first_param=2)
    seen, _ = access.element_filter(viewer, alias="a", event_alias="e", first_param=2)
    object_seen, _ = access.element_filter(viewer, alias="o", event_alias="e", first_param=2)
    live = "" if deleted else "AND NOT a.deleted"
    return await conn.fetchrow(
        "SELECT a.*, e.uuid AS e_uuid, e.org_id AS e_org_id, e.orgc_id AS e_orgc_id, "  # noqa: S608
        "e.locked AS e_locked, o.uuid AS o_uuid FROM attributes a "
        "JOIN events e ON e.id = a.event_id LEFT JOIN objects o ON o.id = a.object_id "
        f"WHERE {sql} {live} AND {event_seen} AND {seen} AND (o.id IS NULL OR {object_seen})",
        key, *args,
    )  # fmt: skip


async def attribute_tags_of(conn: Conn, attribute_ids: Sequence[int]) -> dict[int, list[Any]]:
    """The tags of each attribute, as ``(tag, link)`` pairs of rows, in attaching order."""
    rows = await conn.fetch(
        "SELECT at.id, at.attribute_id, at.event_id, at.tag_id, at.local, "  # noqa: S608
        f"at.relationship_type, {_TAG_COLUMNS} FROM attribute_tags at "
        "JOIN tags t ON t.id = at.tag_id WHERE at.attribute_id = ANY($1::bigint[]) ORDER BY at.id",
        list(attribute_ids),
    )
    link = ("id", "attribute_id", "event_id", "tag_id", "local", "relationship_type")
    found: dict[int, list[Any]] = {}
    for row in rows:
        found.setdefault(int(row["attribute_id"]), []).append(_split_tag(row, link))
    return found


async def sharing_group_views(conn: Conn, ids: Iterable[int]) -> dict[int, access.SharingGroupView]:
    """The sharing groups ``ids`` as the access rules need them (unknown ids are left out)."""
    wanted = sorted({i for i in ids if i})
    if not wanted:
        return {}
    groups = await conn.fetch(
        "SELECT id, org_id, roaming FROM sharing_groups WHERE id = ANY($1::bigint[])", wanted
    )
    orgs = await conn.fetch(
        "SELECT sharing_group_id, org_id FROM sharing_group_orgs "
        "WHERE sharing_group_id = ANY($1::bigint[])",
        wanted,
    )
    servers = await conn.fetch(
        "SELECT sharing_group_id, server_id, all_orgs FROM sharing_group_servers "
        "WHERE sharing_group_id = ANY($1::bigint[])",
        wanted,
    )
    views = {}
    for group in groups:
        gid = group["id"]
        views[int(gid)] = access.SharingGroupView(
            id=int(gid),
            org_id=int(group["org_id"]),
            org_ids=frozenset(int(o["org_id"]) for o in orgs if o["sharing_group_id"] == gid),
            server_ids=frozenset(
                int(s["server_id"]) for s in servers if s["sharing_group_id"] == gid
            ),
            all_orgs_server_ids=frozenset(
                int(s["server_id"])
                for s in servers
                if s["sharing_group_id"] == gid and s["all_orgs"]
            ),
            roaming=bool(group["roaming"]),
        )
    return views


async def rendered_sharing_groups(
    conn: Conn, ids: Iterable[int], *, base_url: str = ""
) -> dict[int, dict[str, Any]]:
    """The sharing groups ``ids`` as events carry them (``wire.render_sharing_group``)."""
    wanted = sorted({i for i in ids if i})
    if not wanted:
        return {}
    groups = await conn.fetch("SELECT * FROM sharing_groups WHERE id = ANY($1::bigint[])", wanted)
    links = await conn.fetch(
        "SELECT * FROM sharing_group_orgs WHERE sharing_group_id = ANY($1::bigint[]) ORDER BY id",
        wanted,
    )
    instances = await conn.fetch(
        "SELECT l.*, s.id AS s_id, s.url AS s_url, s.name AS s_name "
        "FROM sharing_group_servers l LEFT JOIN servers s ON s.id = l.server_id "
        "WHERE l.sharing_group_id = ANY($1::bigint[]) ORDER BY l.id",
        wanted,
    )
    org_ids = {g["org_id"] for g in groups} | {link["org_id"] for link in links}
    orgs = {
        r["id"]: dict(r)
        for r in await conn.fetch(
            "SELECT id, name, uuid, local FROM organisations WHERE id = ANY($1::bigint[])",
            list(org_ids),
        )
    }
    rendered = {}
    for group in groups:
        gid = group["id"]
        members = [(dict(link), orgs[link["org_id"]]) for link in links
                   if link["sharing_group_id"] == gid]  # fmt: skip
        servers = [
            (dict(i), None if i["s_id"] is None else
             {"id": i["s_id"], "url": i["s_url"], "name": i["s_name"]})
            for i in instances if i["sharing_group_id"] == gid
        ]  # fmt: skip
        rendered[int(gid)] = render_sharing_group(
            dict(group), organisation=orgs[group["org_id"]], orgs=members, servers=servers,
            base_url=base_url,
        )  # fmt: skip
    return rendered


@dataclass
class Loaded:
    """An event and everything the viewer may see of it, as rows for ``wire.render_event``."""

    event: dict[str, Any]
    org: dict[str, Any]
    orgc: dict[str, Any]
    attributes: list[dict[str, Any]]
    objects: list[dict[str, Any]]
    references: list[dict[str, Any]]
    tags: list[tuple[dict[str, Any], dict[str, Any]]]
    attribute_tags: list[tuple[dict[str, Any], dict[str, Any]]]
    sightings: list[dict[str, Any]]
    reports: list[dict[str, Any]]
    sighting_orgs: dict[int, dict[str, Any]]
    sharing_groups: dict[int, dict[str, Any]] = field(default_factory=dict)
    """id → the sharing group as ``wire.render_sharing_group`` renders it"""

    def render_arguments(self) -> dict[str, Any]:
        """The keyword arguments of ``wire.render_event`` (the event row aside)."""
        return {
            "org": self.org,
            "orgc": self.orgc,
            "attributes": self.attributes,
            "objects": self.objects,
            "references": self.references,
            "tags": self.tags,
            "attribute_tags": self.attribute_tags,
            "sightings": self.sightings,
            "reports": self.reports,
            "sharing_groups": self.sharing_groups,
            "sighting_orgs": self.sighting_orgs,
        }


def _split_tag(row: Any, link: tuple[str, ...]) -> tuple[dict[str, Any], dict[str, Any]]:
    data = dict(row)
    tag = {k.removeprefix("t_"): v for k, v in data.items() if k.startswith("t_")}
    link_row = {k: data[k] for k in link}
    return tag, link_row


_TAG_COLUMNS = (
    "t.id AS t_id, t.name AS t_name, t.colour AS t_colour, t.exportable AS t_exportable, "
    "t.hide_tag AS t_hide_tag, t.local_only AS t_local_only, "
    "t.numerical_value AS t_numerical_value, t.is_galaxy AS t_is_galaxy, t.org_id AS t_org_id"
)


def _deletion(alias: str, deleted: bool, deleted_only: bool) -> str:
    if deleted_only:
        return f"AND {alias}.deleted"
    return "" if deleted else f"AND NOT {alias}.deleted"


async def load_event(
    conn: Conn,
    event_id: int,
    viewer: Viewer,
    *,
    deleted: bool = False,
    deleted_only: bool = False,
    sightings: bool = True,
    metadata: bool = False,
) -> Loaded | None:
    """The event when the viewer may see it, with the parts they may see (None otherwise).

    ``deleted`` brings soft-deleted attributes and objects too, ``deleted_only`` only them
    (``events/view``'s ``deleted`` 1 and 2); ``metadata`` leaves out attributes, objects and
    reports; ``sightings`` False leaves out sightings. Sightings follow MISP's default
    policy (``Plugin.Sightings_policy`` 0): the event's creator organisation sees them all,
    others their own organisation's, a site admin all."""
    where, args = access.event_filter(viewer, alias="e", first_param=2)
    event = await conn.fetchrow(f"SELECT e.* FROM events e WHERE e.id = $1 AND {where}",  # noqa: S608
                                event_id, *args)  # fmt: skip
    if event is None:
        return None
    orgs = {
        r["id"]: dict(r)
        for r in await conn.fetch(
            "SELECT id, name, uuid, local FROM organisations WHERE id = ANY($1::bigint[])",
            [event["org_id"], event["orgc_id"]],
        )
    }
    attributes: list[Any] = []
    objects: list[Any] = []
    references: list[Any] = []
    reports: list[Any] = []
    attribute_tags: list[Any] = []
    if not metadata:
        seen, seen_args = access.element_filter(viewer, alias="a", event_alias="e", first_param=2)
        attributes = await conn.fetch(
            f"SELECT a.* FROM attributes a JOIN events e ON e.id = a.event_id "  # noqa: S608
            f"WHERE a.event_id = $1 {_deletion('a', deleted, deleted_only)} AND {seen} "
            "ORDER BY a.id",
            event_id, *seen_args,
        )  # fmt: skip
        oseen, oargs = access.element_filter(viewer, alias="o", event_alias="e", first_param=2)
        objects = await conn.fetch(
            f"SELECT o.* FROM objects o JOIN events e ON e.id = o.event_id "  # noqa: S608
            f"WHERE o.event_id = $1 {_deletion('o', deleted or deleted_only, False)} "
            f"AND {oseen} ORDER BY o.id",
            event_id, *oargs,
        )  # fmt: skip
        references = await conn.fetch(
            "SELECT * FROM object_references WHERE event_id = $1 AND NOT deleted ORDER BY id",
            event_id,
        )
        attribute_tags = await conn.fetch(
            "SELECT at.id, at.attribute_id, at.event_id, at.tag_id, at.local, "  # noqa: S608
            f"at.relationship_type, {_TAG_COLUMNS} "
            "FROM attribute_tags at JOIN tags t ON t.id = at.tag_id WHERE at.event_id = $1 "
            "ORDER BY at.id",
            event_id,
        )
        rseen, rargs = access.element_filter(viewer, alias="r", event_alias="e", first_param=2)
        reports = await conn.fetch(
            f"SELECT r.* FROM event_reports r JOIN events e ON e.id = r.event_id "  # noqa: S608
            f"WHERE r.event_id = $1 AND NOT r.deleted AND {rseen} ORDER BY r.id",
            event_id, *rargs,
        )  # fmt: skip
    tags = await conn.fetch(
        "SELECT et.id, et.event_id, et.tag_id, et.local, et.relationship_type, "  # noqa: S608
        f"{_TAG_COLUMNS} FROM event_tags et JOIN tags t ON t.id = et.tag_id "
        "WHERE et.event_id = $1 ORDER BY et.id",
        event_id,
    )
    all_sightings = viewer.site_admin or event["orgc_id"] == viewer.org_id
    sighting_rows = (
        await conn.fetch(
            "SELECT * FROM sightings WHERE event_id = $1 AND ($2 OR org_id = $3) ORDER BY id",
            event_id,
            all_sightings,
            viewer.org_id,
        )
        if sightings and not metadata
        else []
    )
    sighting_orgs = {
        r["id"]: dict(r)
        for r in await conn.fetch(
            "SELECT id, name, uuid, local FROM organisations WHERE id = ANY($1::bigint[])",
            list({s["org_id"] for s in sighting_rows if s["org_id"] is not None}),
        )
    }
    shared = [event, *attributes, *objects, *reports]
    groups = await rendered_sharing_groups(
        conn, (r["sharing_group_id"] for r in shared if r["distribution"] == 4)
    )
    link = ("id", "event_id", "tag_id", "local", "relationship_type")
    attribute_link = ("id", "attribute_id", "event_id", "tag_id", "local", "relationship_type")
    return Loaded(
        event=dict(event),
        org=orgs[event["org_id"]],
        orgc=orgs[event["orgc_id"]],
        attributes=[dict(a) for a in attributes],
        objects=[dict(o) for o in objects],
        references=[dict(r) for r in references],
        tags=[_split_tag(t, link) for t in tags],
        attribute_tags=[_split_tag(t, attribute_link) for t in attribute_tags],
        sightings=[dict(s) for s in sighting_rows],
        reports=[dict(r) for r in reports],
        sighting_orgs=sighting_orgs,
        sharing_groups=groups,
    )
