"""MISP tags through MISP's routes: ``tags/index``, ``tags/attachTagToObject`` and
``tags/removeTagFromObject``, as ``TagsController`` does them.

A global tag is the creator organisation's to attach or remove (it travels with the event,
and changes it: the event's timestamp moves and it is unpublished); a local tag stays on
this instance and changes nothing else. MISP lets only the host organisation attach local
tags (``MISP.host_org_id``); this instance has no host organisation setting, so any tagger
who sees the event or attribute may.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from tessera.common.db import UnitOfWork, driver_in_transaction
from tessera.common.problems import Problem
from tessera.sync import access, store
from tessera.sync.service import changes
from tessera.sync.service.events import may_modify
from tessera.sync.service.parts import creates_tags
from tessera.sync.service.problems import (
    Forbidden,
    NotAllowed,
    NotPermitted,
    SaveFailed,
    TargetNotFound,
)
from tessera.sync.viewer import Viewer

__all__ = ["attach_tags", "index_tags", "remove_tag"]

Conn = Any
Json = dict[str, Any]

NOT_CREATOR = (
    "Cannot alter the tags of this data, only the organisation that has created the data "
    "(orgc) can modify global tags."
)


class InvalidUuid(Problem):
    status = 400
    code = "misp_invalid_uuid"
    title = "Invalid UUID"


class TagNotAttached(Problem):
    status = 404
    code = "misp_tag_not_attached"
    title = "Could not remove tag as it is not attached to the target"


def _tag_json(row: Mapping[str, Any]) -> Json:
    numerical = row["numerical_value"]
    return {
        "id": str(row["id"]),
        "name": row["name"],
        "colour": row["colour"],
        "exportable": bool(row["exportable"]),
        "org_id": str(row["org_id"] or 0),
        "user_id": "0",
        "hide_tag": bool(row["hide_tag"]),
        "numerical_value": None if numerical is None else str(numerical),
        "is_galaxy": bool(row["is_galaxy"]),
        "is_custom_galaxy": False,
        "local_only": bool(row["local_only"]),
        "favourite": False,
        "count": int(row["count"]),
        "attribute_count": int(row["attribute_count"]),
    }


async def index_tags(uow: UnitOfWork, viewer: Viewer, params: Mapping[str, Any]) -> Json:
    """``tags/index``: every tag by name, ``{"Tag": [...]}``, with how many events and
    attributes the viewer sees it on; ``searchall`` (a part of the name), ``name``/
    ``search``/``filter`` (the name, whatever its case), ``favouritesOnly`` (none here)."""
    args: list[Any] = []
    where = ["TRUE"]
    lowered = {k.lower(): v for k, v in params.items()}
    if str(lowered.get("favouritesonly", "")).lower() in ("1", "true"):
        return {"Tag": []}
    if lowered.get("searchall"):
        args.append(f"%{lowered['searchall']}%")
        where.append(f"t.name ILIKE ${len(args)}")
    for key in ("name", "filter", "search"):
        if lowered.get(key):
            args.append(str(lowered[key]))
            where.append(f"lower(t.name) = lower(${len(args)})")
    event_seen, event_args = access.event_filter(viewer, alias="e", first_param=len(args) + 1)
    args += event_args
    seen, _ = access.element_filter(viewer, alias="a", event_alias="e",
                                    first_param=len(args) - len(event_args) + 1)  # fmt: skip
    async with uow.driver() as conn:
        rows = await conn.fetch(
            "SELECT t.*, "  # noqa: S608 - placeholders only
            "(SELECT count(*) FROM event_tags et JOIN events e ON e.id = et.event_id "
            f" WHERE et.tag_id = t.id AND {event_seen}) AS count, "
            "(SELECT count(*) FROM attribute_tags at JOIN attributes a ON a.id = at.attribute_id "
            " JOIN events e ON e.id = at.event_id "
            f" WHERE at.tag_id = t.id AND NOT a.deleted AND {event_seen} AND {seen}) "
            f"AS attribute_count FROM tags t WHERE {' AND '.join(where)} ORDER BY t.name",
            *args,
        )
    return {"Tag": [_tag_json(r) for r in rows]}


@dataclass(frozen=True)
class _Target:
    kind: str
    """``Event`` or ``Attribute``"""
    id: int
    event_id: int
    event: Mapping[str, Any]
    """the event's ``orgc_id`` and ``org_id``"""
    object_id: int | None = None


async def _target(conn: Conn, viewer: Viewer, uuid: Any) -> _Target:
    """``TagsController::__findObjectByUuid``: the event or attribute the viewer sees."""
    text = str(uuid).strip()
    try:
        UUID(text)
    except ValueError:
        raise InvalidUuid() from None
    event = await store.visible_event(conn, text, viewer)
    if event is not None:
        return _Target("Event", event["id"], event["id"], event)
    attribute = await store.visible_attribute(conn, text, viewer, deleted=False)
    if attribute is None:
        raise TargetNotFound()
    return _Target(
        "Attribute", attribute["id"], attribute["event_id"],
        {"orgc_id": attribute["e_orgc_id"], "org_id": attribute["e_org_id"]},
        attribute["object_id"],
    )  # fmt: skip


def _may_change_global(viewer: Viewer, target: _Target) -> bool:
    return viewer.site_admin or target.event["orgc_id"] == viewer.org_id


async def _changed(uow: UnitOfWork, conn: Conn, target: _Target, *, now: int) -> None:
    """A global tag was attached or removed: ``MispAttribute::touch`` or
    ``Event::unpublishEvent``."""
    if target.kind == "Attribute":
        await conn.execute("UPDATE attributes SET timestamp = $2 WHERE id = $1", target.id, now)
        if target.object_id is not None:
            await conn.execute("UPDATE objects SET timestamp = $2 WHERE id = $1",
                               target.object_id, now)  # fmt: skip
    await changes.unpublish_event(conn, target.event_id, now=now)
    await changes.announce(uow, conn, target.event_id)


async def _tag_row(conn: Conn, tag: Any) -> Any:
    text = str(tag).strip()
    if text.isdigit():
        return await conn.fetchrow("SELECT * FROM tags WHERE id = $1", int(text))
    return await conn.fetchrow(
        "SELECT * FROM tags WHERE lower(name) = lower($1) ORDER BY id LIMIT 1", text
    )


async def attach_tags(
    uow: UnitOfWork,
    viewer: Viewer,
    uuid: Any,
    tags: Any,
    *,
    local: bool,
    relationship_type: str | None = None,
) -> Json:
    """``tags/attachTagToObject``: each tag (a name or an id) attached to the event or
    attribute ``uuid``; a name unknown here is created for a tag editor."""
    if not viewer.may_tag:
        raise NotPermitted()
    if not uuid:
        raise NotAllowed(title="Invalid object uuid")
    names = tags if isinstance(tags, list) else [tags]
    if not names or not all(str(t).strip() for t in names):
        raise NotAllowed(title="Invalid tag")
    now = changes.epoch()
    fails: list[str] = []
    messages: list[str] = []
    existing: list[str] = []
    async with uow:
        conn = await driver_in_transaction(uow.session)
        target = await _target(conn, viewer, uuid)
        if not local and not _may_change_global(viewer, target):
            raise Forbidden(title=NOT_CREATOR)
        touched = False
        for name in names:
            row = await _tag_row(conn, name)
            if row is None:
                if str(name).strip().isdigit():
                    fails.append("Invalid Tag.")
                    continue
                if not creates_tags(viewer):
                    fails.append("Tag not found and insufficient privileges to create it.")
                    continue
                row = await conn.fetchrow(
                    "INSERT INTO tags (name, colour) VALUES ($1, $2) RETURNING *",
                    str(name).strip(), _colour(str(name).strip()),
                )  # fmt: skip
            if not viewer.site_admin and row["org_id"] not in (None, viewer.org_id):
                fails.append("Invalid Tag. This tag can only be set by a fixed organisation.")
                continue
            if row["local_only"] and not local:
                fails.append("Invalid Tag. This tag can only be set as a local tag.")
                continue
            made = await _link(conn, target, row["id"], local=local,
                               relationship_type=relationship_type)  # fmt: skip
            if not made:
                existing.append(row["name"])
                messages.append(
                    f"{target.kind} already has the requested tag attached, no changes had to "
                    f"be made for tag {row['name']}."
                )
                continue
            scope = "Local" if local else "Global"
            messages.append(
                f"{scope} tag {row['name']}({row['id']}) successfully attached to "
                f"{target.kind}({target.id})."
            )
            touched = touched or not local
        if touched:
            await _changed(uow, conn, target, now=now)
        await uow.commit()
    return _attach_answer(target, messages, existing, fails)


def _attach_answer(target: _Target, messages: list[str], existing: list[str],
                   fails: list[str]) -> Json:  # fmt: skip
    failed = ""
    if fails:
        reasons = json.dumps({str(i): f for i, f in enumerate(fails)}, separators=(",", ":"))
        failed = f"Failed to attach {len(fails)} tags. Reasons: {reasons}"
    if not messages:
        raise SaveFailed(controller="tags", action="attachTagToObject", model="Tag", errors=failed)
    message = messages[-1]
    if len(messages) > 1:
        message = f"Successfully attached {len(messages)} tags to {target.kind} ({target.id})"
        if existing:
            message += (
                f". {target.id} already has the requested tag attached, no changes had to be "
                f"made for tags {json.dumps(existing)}."
            )
    if failed:
        message += "\n" + failed
    return {"saved": True, "success": True, "name": message, "message": message,
            "url": "/tags/attachTagToObject"}  # fmt: skip


def _colour(name: str) -> str:
    """``Tag::tagColor``: the same colour for the same name everywhere."""
    return "#" + hashlib.md5(name.encode(), usedforsecurity=False).hexdigest()[:6]


async def _link(
    conn: Conn, target: _Target, tag_id: int, *, local: bool, relationship_type: str | None
) -> bool:
    if target.kind == "Event":
        made = await conn.fetchval(
            "INSERT INTO event_tags (event_id, tag_id, local, relationship_type) "
            "VALUES ($1, $2, $3, $4) ON CONFLICT (event_id, tag_id) DO NOTHING RETURNING id",
            target.id, tag_id, local, relationship_type or "",
        )  # fmt: skip
    else:
        made = await conn.fetchval(
            "INSERT INTO attribute_tags (attribute_id, event_id, tag_id, local, relationship_type) "
            "VALUES ($1, $2, $3, $4, $5) ON CONFLICT (attribute_id, tag_id) DO NOTHING "
            "RETURNING id",
            target.id, target.event_id, tag_id, local, relationship_type or "",
        )  # fmt: skip
    return made is not None


async def remove_tag(uow: UnitOfWork, viewer: Viewer, uuid: Any, tag: Any) -> Json:
    """``tags/removeTagFromObject``: a global tag by the creator organisation, a local one
    by whoever may change the event or holds it here."""
    if not viewer.may_tag:
        raise NotPermitted()
    if not uuid:
        raise NotAllowed(title="Invalid object uuid")
    if tag is None or not str(tag).strip():
        raise NotAllowed(title="Invalid tag")
    now = changes.epoch()
    async with uow:
        conn = await driver_in_transaction(uow.session)
        row = await _tag_row(conn, tag)
        if row is None:
            raise NotAllowed(title="Invalid Tag.")
        target = await _target(conn, viewer, uuid)
        table, column = ("event_tags", "event_id") if target.kind == "Event" \
            else ("attribute_tags", "attribute_id")  # fmt: skip
        link = await conn.fetchrow(
            f"SELECT id, local FROM {table} WHERE {column} = $1 AND tag_id = $2",  # noqa: S608
            target.id, row["id"],
        )  # fmt: skip
        if link is None:
            raise TagNotAttached(title=f"{TagNotAttached.title} {target.kind}")
        if not link["local"] and not _may_change_global(viewer, target):
            raise Forbidden(title=NOT_CREATOR)
        if link["local"] and not (
            may_modify(viewer, target.event) or target.event["org_id"] == viewer.org_id
        ):
            raise Forbidden(title="Insufficient privileges to remove local tags "
                             "from events you do not own.")  # fmt: skip
        await conn.execute(f"DELETE FROM {table} WHERE id = $1", link["id"])  # noqa: S608
        if not link["local"]:
            await _changed(uow, conn, target, now=now)
        await uow.commit()
    scope = "Local" if link["local"] else "Global"
    message = (
        f"{scope} tag {row['name']} ({row['id']}) successfully removed from "
        f"{target.kind}({target.id})."
    )
    return {"saved": True, "success": True, "name": message, "message": message,
            "url": "/tags/removeTagFromObject"}  # fmt: skip
