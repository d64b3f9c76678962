"""Writing what an event carries (objects, attributes, references, reports, tags, sightings)
as ``Event::_add`` and ``Event::_edit`` capture them, for the routes' use cases.

Two ways of deciding what replaces what, by who sends it:

* a **sync user** (a remote server pushing) keeps its timestamps: a part replaces the copy
  here only when it is newer (:mod:`tessera.sync.store`'s rule);
* a **user** (or a client acting for one) edits: a part sent without a timestamp, or with a
  newer one, is written with the time of the edit; one sent with its old timestamp is
  unchanged and left alone (PyMISP drops the timestamp of what it edited, exactly so).

A part whose uuid belongs to another event is never touched; a new attribute outside objects
that repeats the type, category and value of a live one is left out (MISP's
``valueIsUnique``); tags the caller may not use or create are left out (``Tag::captureTag``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar
from uuid import UUID

from tessera.sync import directory, store
from tessera.sync.viewer import Viewer
from tessera.sync.wire import AttributeIn, EventIn, ObjectIn, Problem, SightingIn, TagIn

__all__ = ["DUPLICATE", "Written", "creates_tags", "tag_owner", "write_parts"]

DUPLICATE = "A similar attribute already exists for this event."

Conn = Any
P = TypeVar("P", AttributeIn, ObjectIn)


def creates_tags(viewer: Viewer) -> bool:
    """Whether the viewer's tags unknown here are created (MISP's ``perm_tag_editor``, which
    its default admin, org admin and sync user roles have) or left out."""
    return viewer.site_admin or viewer.org_admin or viewer.may_sync


def tag_owner(viewer: Viewer) -> int | None:
    """The organisation whose restricted tags the viewer may use (None: any, a site admin)."""
    return None if viewer.site_admin else viewer.org_id


@dataclass
class Written:
    """What :func:`write_parts` did."""

    changes: int = 0
    """parts written and tags attached: anything but 0 changed the event"""
    attribute_ids: dict[UUID, int] = field(default_factory=dict)
    dropped: list[Problem] = field(default_factory=list)


def _newer(parts: Sequence[P], stored: dict[UUID, Any], event_id: int, now: int) -> list[P]:
    """A sync user's parts that replace (or add to) what is here: newer ones, by timestamp."""
    return [
        p for p in parts
        if (row := stored.get(p.uuid)) is None
        or (row["event_id"] == event_id and (p.timestamp or now) > row["timestamp"])
    ]  # fmt: skip


def _fresh(parts: Sequence[P], stored: dict[UUID, Any], event_id: int) -> tuple[list[P], list[P]]:
    """A user's edit: (parts to write, parts unchanged). New parts and parts sent without a
    timestamp or with a newer one are written; a part of another event is neither."""
    write, keep = [], []
    for part in parts:
        row = stored.get(part.uuid)
        if row is not None and row["event_id"] != event_id:
            continue
        if row is None or part.timestamp is None or part.timestamp > row["timestamp"]:
            write.append(part)
        else:
            keep.append(part)
    return write, keep


async def write_parts(
    conn: Conn, event_id: int, event: EventIn, viewer: Viewer, *, now: int, edit: bool
) -> Written:
    """Write the event's parts (its own row is the caller's). ``edit`` False: a new event,
    every part is new and keeps its timestamp; True: ``events/edit``, the rule above."""
    written = Written()
    as_user = edit and not viewer.may_sync
    stored_objects = await store.objects_by_uuid(conn, (o.uuid for o in event.objects)) \
        if edit else {}  # fmt: skip
    if as_user:
        changed_objects, _ = _fresh(event.objects, stored_objects, event_id)
    else:
        changed_objects = _newer(event.objects, stored_objects, event_id, now)
    object_ids = await store.upsert_objects(conn, event_id, changed_objects, now=now, force=as_user)
    written.changes += len(object_ids)
    # the objects left as they are: nothing is newer, only their ids (for their attributes)
    kept = [o for o in event.objects if o.uuid not in object_ids]
    object_ids |= await store.upsert_objects(conn, event_id, kept, now=now)

    inside = [(o, a) for o in event.objects if o.uuid in object_ids for a in o.attributes]
    object_of = {a.uuid: o.uuid for o, a in inside}
    attributes = [*event.attributes, *(a for _, a in inside)]
    stored = await store.attributes_by_uuid(conn, (a.uuid for a in attributes)) if edit else {}
    if as_user:
        attributes, _ = _fresh(attributes, stored, event_id)
    else:
        attributes = _newer(attributes, stored, event_id, now)
    if edit:
        alone = [a for a in attributes if a.uuid not in object_of]
        repeated = {alone[i].uuid for i in await store.duplicate_attributes(conn, event_id, alone)}
        for index, attribute in enumerate(event.attributes):
            if attribute.uuid in repeated:
                written.dropped.append(Problem(f"Attribute.{index}.value", DUPLICATE))
        attributes = [a for a in attributes if a.uuid not in repeated]
    ids = await store.upsert_attributes(
        conn, event_id, attributes, now=now, object_ids=object_ids, object_of=object_of,
        force=as_user,
    )  # fmt: skip
    written.attribute_ids = ids
    written.changes += len(ids)

    await store.upsert_references(conn, event_id, event.objects, object_ids, now=now)
    await store.upsert_reports(conn, event_id, event.reports, now=now)

    if viewer.may_tag:
        create, owner = creates_tags(viewer), tag_owner(viewer)
        written.changes += await store.attach_tags(
            conn, event_id, event.tags, create=create, org_id=owner
        )
        links: list[tuple[int, TagIn]] = [
            (ids[a.uuid], tag) for a in attributes if a.uuid in ids for tag in a.tags
        ]
        written.changes += await store.attach_attribute_tags(
            conn, event_id, links, create=create, org_id=owner
        )
    await _sightings(conn, event_id, attributes, ids, viewer, now=now)
    return written


async def _sightings(
    conn: Conn,
    event_id: int,
    attributes: Sequence[AttributeIn],
    ids: dict[UUID, int],
    viewer: Viewer,
    *,
    now: int,
) -> None:
    """The sightings the written attributes carry (``Sighting::captureSightings``): each
    keeps the organisation it names (found or created by uuid), else it is the viewer's."""
    pairs: list[tuple[int, SightingIn]] = [
        (ids[a.uuid], s) for a in attributes if a.uuid in ids for s in a.sightings
    ]
    if not pairs:
        return
    org_ids: dict[UUID, int] = {}
    moment = datetime.now(UTC)
    for _, sighting in pairs:
        org = sighting.org
        if org is not None and org.uuid is not None and org.uuid not in org_ids:
            org_ids[org.uuid] = await directory.ensure_organisation(
                conn, org.uuid, org.name or str(org.uuid), moment
            )
    await store.upsert_sightings(
        conn, event_id, pairs, now=now, org_ids=org_ids, default_org_id=viewer.org_id
    )
