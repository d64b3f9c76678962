"""Reading events back: the one a viewer may see by id or uuid, everything in it they may see
(for ``wire.render_event``), its sharing groups. asyncpg; nothing here commits."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from tessera.sync import access
from tessera.sync.viewer import Viewer
from tessera.sync.wire import render_sharing_group

from .tags import TAG_COLUMNS, split_tag

__all__ = [
    "Loaded",
    "ident_condition",
    "load_event",
    "rendered_sharing_groups",
    "sharing_group_views",
    "visible_attribute",
    "visible_event",
]

Conn = Any


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
    keys: list[dict[str, Any]] = field(default_factory=list)
    """the keys a protected event trusts (``cryptographic_keys``)"""

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
            "keys": self.keys,
        }


def _deletion(alias: str, deleted: bool, deleted_only: bool, *, own_only: bool) -> str:
    """The ``deleted`` condition on ``alias`` (joined to its event as ``e``). ``own_only``:
    the viewer may not sync, so soft-deleted parts show only in events their organisation
    holds, ``$2`` (``Event::fetchEvent``); a sync user or a site admin sees them in any."""
    if deleted_only:
        return f"AND {alias}.deleted AND e.org_id = $2" if own_only else f"AND {alias}.deleted"
    if deleted:
        return f"AND (NOT {alias}.deleted OR e.org_id = $2)" if own_only else ""
    return f"AND NOT {alias}.deleted"


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
    own_only = not (viewer.may_sync or viewer.site_admin)  # then $2 is the viewer's org
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
        a_deleted = _deletion("a", deleted, deleted_only, own_only=own_only)
        o_deleted = _deletion("o", deleted or deleted_only, False, own_only=own_only)
        attributes = await conn.fetch(
            f"SELECT a.* FROM attributes a JOIN events e ON e.id = a.event_id "  # noqa: S608
            f"WHERE a.event_id = $1 {a_deleted} AND {seen} "
            "ORDER BY a.id",
            event_id, *seen_args,
        )  # fmt: skip
        oseen, oargs = access.element_filter(viewer, alias="o", event_alias="e", first_param=2)
        objects = await conn.fetch(
            f"SELECT o.* FROM objects o JOIN events e ON e.id = o.event_id "  # noqa: S608
            f"WHERE o.event_id = $1 {o_deleted} "
            f"AND {oseen} ORDER BY o.id",
            event_id, *oargs,
        )  # fmt: skip
        references = await conn.fetch(
            "SELECT * FROM object_references WHERE event_id = $1 AND NOT deleted ORDER BY id",
            event_id,
        )
        attribute_tags = await conn.fetch(
            "SELECT at.id, at.attribute_id, at.event_id, at.tag_id, at.local, "  # noqa: S608
            f"at.relationship_type, {TAG_COLUMNS} "
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
        f"{TAG_COLUMNS} FROM event_tags et JOIN tags t ON t.id = et.tag_id "
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
    keys = await conn.fetch(
        "SELECT * FROM cryptographic_keys WHERE event_id = $1 ORDER BY id", event["id"]
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
        tags=[split_tag(t, link) for t in tags],
        attribute_tags=[split_tag(t, attribute_link) for t in attribute_tags],
        sightings=[dict(s) for s in sighting_rows],
        reports=[dict(r) for r in reports],
        sighting_orgs=sighting_orgs,
        sharing_groups=groups,
        keys=[dict(k) for k in keys],
    )
