"""MISP object references through MISP's routes: ``objectReferences/add[/{object}]``,
``delete/{id}[/hard]`` and ``view/{id}``, as ``ObjectReferencesController`` and
``ObjectReference::smartDelete`` do them.

A reference goes from an object to an object or an attribute of the same event (or of the
event it extends), found by uuid among the live ones; only who may modify the event adds or
deletes one. Each change moves the timestamps of the object and of its event to now and
unpublishes the event (``ObjectReference::updateTimestamps``), announced as
``sync.event.updated``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from uuid import uuid4

from pydantic import ValidationError

from tessera.common.db import UnitOfWork, driver_in_transaction
from tessera.sync import access, store
from tessera.sync.service import changes
from tessera.sync.service.events import may_modify
from tessera.sync.service.problems import (
    Forbidden,
    ObjectNotFound,
    ReferenceNotFound,
    SaveFailed,
    TargetNotFound,
)
from tessera.sync.viewer import Viewer
from tessera.sync.wire import ObjectReferenceIn
from tessera.sync.wire.answers import render_reference
from tessera.sync.wire.problems import problems_of

__all__ = ["add_reference", "delete_reference", "rendered_references", "view_reference"]

Conn = Any
Json = dict[str, Any]

OUTSIDE = "Invalid target. Target has to be within the same event or extending it."


async def _target(conn: Conn, referenced: Any) -> tuple[int, int, int] | None:
    """``(id, event id, referenced_type)`` of the live object (1), else attribute (0), with
    that uuid (``ObjectReference::getReferencedInfo``)."""
    found = await conn.fetchrow(
        "SELECT id, event_id, 1 AS kind FROM objects WHERE uuid = $1 AND NOT deleted "
        "UNION ALL SELECT id, event_id, 0 FROM attributes WHERE uuid = $1 AND NOT deleted "
        "ORDER BY kind DESC LIMIT 1",
        referenced,
    )
    return None if found is None else (found["id"], found["event_id"], found["kind"])


async def _referenced_id(conn: Conn, row: Mapping[str, Any]) -> int | None:
    table = "objects" if row["referenced_type"] == 1 else "attributes"
    found = await conn.fetchval(
        f"SELECT id FROM {table} WHERE uuid = $1",  # noqa: S608 (one of two names)
        row["referenced_uuid"],
    )
    return None if found is None else int(found)


async def rendered_references(conn: Conn, object_id: int) -> list[Json]:
    """The object's live references as ``objectReferences/view`` shows each."""
    shown = []
    for row in await store.object_references(conn, object_id):
        referenced_id = await _referenced_id(conn, row)
        shown.append(render_reference(dict(row), referenced_id=referenced_id)["ObjectReference"])
    return shown


async def _extended_by(
    conn: Conn, viewer: Viewer, source: Mapping[str, Any], event_id: int
) -> bool:
    """Whether the target's event is the one the source's event extends, and seen by the
    viewer."""
    if source["e_extends_uuid"] is None:
        return False
    where, args = access.event_filter(viewer, alias="e", first_param=3)
    found = await conn.fetchval(
        f"SELECT 1 FROM events e WHERE e.id = $1 AND e.uuid = $2 AND {where}",  # noqa: S608
        event_id, source["e_extends_uuid"], *args,
    )  # fmt: skip
    return found is not None


def _body(payload: Any) -> dict[str, Any]:
    body = payload
    if isinstance(body, Mapping) and isinstance(body.get("ObjectReference"), Mapping):
        body = body["ObjectReference"]
    return dict(body) if isinstance(body, Mapping) else {}


async def add_reference(
    uow: UnitOfWork, viewer: Viewer, object_ident: str | None, payload: Any
) -> Json:
    """``objectReferences/add[/{object id|uuid}]`` (the object may be the body's
    ``object_uuid``, as PyMISP sends it): answered as ``{"ObjectReference": {...}}``. The
    reference gets a uuid of its own, as in MISP."""
    body = _body(payload)
    ident = object_ident or str(body.get("object_uuid") or "").strip()
    if not ident:
        raise ObjectNotFound(title="No object defined.")
    try:
        reference = ObjectReferenceIn.model_validate(
            {
                key: body[key]
                for key in ("referenced_uuid", "relationship_type", "comment")
                if body.get(key) is not None
            }
        )
    except ValidationError as error:
        raise SaveFailed(
            controller="object_references", action="add", model="ObjectReference",
            errors={p.path: [p.message] for p in problems_of(error)},
        ) from None  # fmt: skip
    now = changes.epoch()
    async with uow:
        conn = await driver_in_transaction(uow.session)
        source = await store.visible_object(conn, ident, viewer, deleted=False)
        if source is None or not may_modify(viewer, {"orgc_id": source["e_orgc_id"]}):
            raise ObjectNotFound()
        target = await _target(conn, reference.referenced_uuid)
        if target is None:
            raise TargetNotFound(title="Invalid target.")
        target_id, target_event, kind = target
        if target_event != source["event_id"] and not await _extended_by(
            conn, viewer, source, target_event
        ):
            raise TargetNotFound(title=OUTSIDE)
        row = await conn.fetchrow(
            "INSERT INTO object_references (uuid, object_id, event_id, source_uuid, "
            "referenced_uuid, referenced_type, relationship_type, comment, timestamp, deleted) "
            "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, false) RETURNING *",
            uuid4(), source["id"], source["event_id"], source["uuid"],
            reference.referenced_uuid, kind, reference.relationship_type, reference.comment, now,
        )  # fmt: skip
        await _touch(uow, conn, source["id"], source["event_id"], now=now)
        await uow.commit()
    answer = render_reference(dict(row), referenced_id=target_id)
    answer["ObjectReference"]["object_uuid"] = str(source["uuid"])
    return answer


async def _touch(uow: UnitOfWork, conn: Conn, object_id: int, event_id: int, *, now: int) -> None:
    """``updateTimestamps``: the object's and the event's timestamps, the event unpublished,
    and the change announced."""
    await conn.execute("UPDATE objects SET timestamp = $2 WHERE id = $1", object_id, now)
    await changes.unpublish_event(conn, event_id, now=now)
    await changes.announce(uow, conn, event_id)


async def view_reference(uow: UnitOfWork, viewer: Viewer, ident: str) -> Json:
    """``objectReferences/view/{id|uuid}``: a reference of an object the viewer may see."""
    async with uow.driver() as conn:
        row = await store.visible_reference(conn, ident, viewer)
        if row is None:
            raise ReferenceNotFound()
        return render_reference(dict(row), referenced_id=await _referenced_id(conn, row))


async def delete_reference(uow: UnitOfWork, viewer: Viewer, ident: str, *, hard: bool) -> Json:
    """``objectReferences/delete/{id|uuid}[/hard]``: soft (``deleted``, kept for sync) unless
    ``hard``; by whoever may modify the event."""
    now = changes.epoch()
    async with uow:
        conn = await driver_in_transaction(uow.session)
        row = await store.visible_reference(conn, ident, viewer)
        if row is None:
            raise ReferenceNotFound()
        if not may_modify(viewer, {"orgc_id": row["e_orgc_id"]}):
            raise Forbidden(title="Invalid object reference.")
        if hard:
            await conn.execute("DELETE FROM object_references WHERE id = $1", row["id"])
        else:
            await conn.execute(
                "UPDATE object_references SET deleted = true, timestamp = $2 WHERE id = $1",
                row["id"], now,
            )  # fmt: skip
        await _touch(uow, conn, row["object_id"], row["event_id"], now=now)
        await uow.commit()
    ident_out = str(row["id"])
    return {"saved": True, "success": True, "name": "ObjectReference deleted",
            "message": "ObjectReference deleted",
            "url": f"/object_references/delete/{ident_out}", "id": ident_out}  # fmt: skip
