"""Sharing groups named by what a client sends: each becomes a group of this instance the
caller may use, or what names it is refused (the event) or left out (an element), as
``EventsController::add``, ``MispAttribute::captureAttribute`` and ``SharingGroup::captureSG``
do."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, TypeAlias
from uuid import UUID

from tessera.sync import access, store
from tessera.sync.service.problems import NotAllowed
from tessera.sync.viewer import Viewer
from tessera.sync.wire import AttributeIn, EventIn, EventReportIn, ObjectIn, Problem

__all__ = ["INVALID_GROUP", "resolve_groups", "usable_group"]

INVALID_GROUP = "Invalid Sharing Group or not authorised."

Conn = Any
_Element: TypeAlias = AttributeIn | ObjectIn | EventReportIn


async def usable_group(conn: Conn, viewer: Viewer, group_id: int | None) -> bool:
    """Whether ``group_id`` is a sharing group here the viewer may give as a distribution."""
    if group_id is None:
        return False
    views = await store.sharing_group_views(conn, [group_id])
    view = views.get(group_id)
    return view is not None and access.may_use_sharing_group(viewer, view)


async def resolve_groups(
    conn: Conn, viewer: Viewer, event: EventIn, *, capture: bool, owner_org_id: int
) -> tuple[int | None, list[Problem]]:
    """Give the event and each of its elements a local ``sharing_group_id`` (distribution 4)
    or none (any other distribution), in place; the event's group id, and what was left out.

    A ``SharingGroup`` the payload carries is captured by uuid when ``capture`` (a sync user
    or a site admin: ``SharingGroup::captureSG``), else it must exist here already; a bare
    ``sharing_group_id`` is a group of this instance. Either must be one the viewer may use:
    for the event, else 405 "Invalid Sharing Group or not authorised."; an element is left
    out (MISP logs and drops it)."""
    now = datetime.now(UTC)
    by_uuid: dict[UUID, int] = {}

    async def local(element: EventIn | _Element) -> int | None:
        group_id = element.sharing_group_id
        if element.sharing_group is not None:
            group = element.sharing_group
            if capture:
                if group.uuid not in by_uuid:
                    by_uuid[group.uuid] = await store.upsert_sharing_group(
                        conn, group, now=now, fallback_org_id=owner_org_id
                    )
                return by_uuid[group.uuid]
            found = await conn.fetchval("SELECT id FROM sharing_groups WHERE uuid = $1", group.uuid)
            group_id = None if found is None else int(found)
        return group_id if await usable_group(conn, viewer, group_id) else None

    async def settle(element: EventIn | _Element) -> bool:
        if element.distribution != access.Distribution.SHARING_GROUP:
            element.sharing_group_id, element.sharing_group = None, None
            return True
        group_id = await local(element)
        element.sharing_group_id, element.sharing_group = group_id, None
        return group_id is not None

    dropped: list[Problem] = []
    if not await settle(event):
        raise NotAllowed(title=INVALID_GROUP)

    async def kept(elements: list[Any], path: str) -> list[Any]:
        keep = []
        for index, element in enumerate(elements):
            if await settle(element):
                keep.append(element)
            else:
                dropped.append(Problem(f"{path}.{index}.sharing_group_id", INVALID_GROUP))
        return keep

    event.attributes = await kept(event.attributes, "Attribute")
    event.objects = await kept(event.objects, "Object")
    for index, obj in enumerate(event.objects):
        obj.attributes = await kept(obj.attributes, f"Object.{index}.Attribute")
    event.reports = await kept(event.reports, "EventReport")
    return event.sharing_group_id, dropped
