"""Reading MISP objects and object references one at a time, as the object routes need them:
by id or uuid, only when the viewer may see them. asyncpg; nothing here commits."""

from __future__ import annotations

from typing import Any

from tessera.sync import access
from tessera.sync.viewer import Viewer

from .reading import ident_condition

__all__ = [
    "object_attributes",
    "object_references",
    "visible_object",
    "visible_reference",
]

Conn = Any

_EVENT_COLUMNS = (
    "e.uuid AS e_uuid, e.org_id AS e_org_id, e.orgc_id AS e_orgc_id, e.locked AS e_locked, "
    "e.info AS e_info, e.extends_uuid AS e_extends_uuid"
)


async def visible_object(conn: Conn, ident: str, viewer: Viewer, *, deleted: bool) -> Any:
    """The ``objects`` row for an id or uuid when the viewer may see it and its event
    (``MispObject::buildConditions``), with its event's ``e_uuid``, ``e_org_id``,
    ``e_orgc_id``, ``e_locked``, ``e_info``, ``e_extends_uuid``; None otherwise.
    ``deleted``: a soft-deleted one too."""
    condition = ident_condition(ident, alias="o", first_param=1)
    if condition is None:
        return None
    sql, key = condition
    event_seen, args = access.event_filter(viewer, alias="e", first_param=2)
    seen, _ = access.element_filter(viewer, alias="o", event_alias="e", first_param=2)
    live = "" if deleted else "AND NOT o.deleted"
    return await conn.fetchrow(
        f"SELECT o.*, {_EVENT_COLUMNS} FROM objects o JOIN events e ON e.id = o.event_id "  # noqa: S608
        f"WHERE {sql} {live} AND {event_seen} AND {seen}",
        key, *args,
    )  # fmt: skip


async def object_attributes(conn: Conn, object_id: int, viewer: Viewer) -> list[Any]:
    """The object's live attributes the viewer may see, in order of creation."""
    seen, args = access.element_filter(viewer, alias="a", event_alias="e", first_param=2)
    rows = await conn.fetch(
        "SELECT a.* FROM attributes a JOIN events e ON e.id = a.event_id "  # noqa: S608
        f"WHERE a.object_id = $1 AND NOT a.deleted AND {seen} ORDER BY a.id",
        object_id, *args,
    )  # fmt: skip
    return list(rows)


async def object_references(conn: Conn, object_id: int) -> list[Any]:
    """The object's live references, in order of creation."""
    return list(
        await conn.fetch(
            "SELECT * FROM object_references WHERE object_id = $1 AND NOT deleted ORDER BY id",
            object_id,
        )
    )


async def visible_reference(conn: Conn, ident: str, viewer: Viewer) -> Any:
    """The ``object_references`` row for an id or uuid (deleted or not) when the viewer may
    see its object, with the object's ``o_uuid`` and its event's columns as
    :func:`visible_object` has them; None otherwise."""
    condition = ident_condition(ident, alias="r", first_param=1)
    if condition is None:
        return None
    sql, key = condition
    event_seen, args = access.event_filter(viewer, alias="e", first_param=2)
    seen, _ = access.element_filter(viewer, alias="o", event_alias="e", first_param=2)
    return await conn.fetchrow(
        f"SELECT r.*, o.uuid AS o_uuid, {_EVENT_COLUMNS} FROM object_references r "  # noqa: S608
        "JOIN objects o ON o.id = r.object_id JOIN events e ON e.id = o.event_id "
        f"WHERE {sql} AND {event_seen} AND {seen}",
        key, *args,
    )  # fmt: skip
