"""MISP objects through MISP's routes: ``objects/add/{event}``, ``view``, ``edit`` and
``delete``, as ``ObjectsController`` and ``MispObject::saveObject`` / ``deltaMerge`` /
``deleteObject`` do them; their references are :mod:`.references`.

Only who may modify the event (its creator organisation, or a site admin) adds, edits or
deletes; an object the caller cannot see is not found. Each change moves the event's
timestamp to now and unpublishes it (``Event::unpublishEvent``), announced as
``sync.event.updated``, in the transaction of the change.

An object whose template this instance knows (pymisp's, by uuid and version) takes its name,
meta-category and description from it and must conform to it (:mod:`tessera.sync.templates`).
A bad object or attribute refuses the whole request with MISP's ``saveFailResponse`` (403)
whose ``errors`` name each field (``Attribute.1.value``); MISP drops a bad attribute of an edit
silently instead.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any
from uuid import UUID

from anyio import to_thread
from pydantic import ValidationError

from tessera.common.db import UnitOfWork, driver_in_transaction
from tessera.sync import store
from tessera.sync.service import changes
from tessera.sync.service.events import may_modify
from tessera.sync.service.parts import creates_tags, tag_owner
from tessera.sync.service.problems import (
    EventNotFound,
    Forbidden,
    NotAllowed,
    NotPermitted,
    ObjectNotFound,
    SaveFailed,
    TemplateNotFound,
)
from tessera.sync.service.references import rendered_references
from tessera.sync.service.sharing import INVALID_GROUP, usable_group
from tessera.sync.templates import NO_ATTRIBUTES, Template, conformity, load_templates
from tessera.sync.templates import unknown_relations as outside_template
from tessera.sync.viewer import Viewer
from tessera.sync.wire import AttributeIn, ObjectIn, render_attribute
from tessera.sync.wire.outgoing import render_object, render_tag
from tessera.sync.wire.problems import problems_of

__all__ = ["add_object", "delete_object", "edit_object", "object_exists", "view_object"]

Conn = Any
Json = dict[str, Any]

NOT_UNIQUE = "The UUID provided is not unique"
DUPLICATE_OBJECT = (
    "Duplicate object found (id: {id}, uuid: {uuid}). Since breakOnDuplicate is set the object "
    "will not be added."
)
LACKING = "No valid template found and object lacking template information. ({field})"
_TEMPLATE_FIELDS = ("name", "meta-category", "description", "template_version", "template_uuid")
# what objects/edit changes of the object itself (MispObject::deltaMerge)
_EDITABLE = ("comment", "template_version", "distribution", "sharing_group_id", "first_seen",
             "last_seen")  # fmt: skip
# what makes an attribute sent to objects/edit a change (deltaMerge's checkFields, and
# ``deleted``, so that PyMISP's ``attribute.delete()`` then ``update_object`` deletes it)
_CHECKED = ("category", "value1", "value2", "to_ids", "distribution", "sharing_group_id",
            "comment", "disable_correlation", "first_seen", "last_seen", "deleted")  # fmt: skip


async def templates() -> Mapping[UUID, Template]:
    """pymisp's object templates by uuid, read once off the event loop."""
    return await to_thread.run_sync(load_templates)


def _flag(value: Any) -> bool:
    return str(value).strip().lower() in ("1", "true")


def _as_uuid(value: Any) -> UUID | None:
    try:
        return UUID(str(value).strip())
    except ValueError:
        return None


def _unwrapped(payload: Any) -> tuple[dict[str, Any], Any]:
    """``objects/add``'s and ``edit``'s body as ``(object, attributes)``: ``{"Object": {...}}``
    or the object itself, maybe inside ``{"request": ...}``; its attributes in the object or
    beside it (``Attribute``)."""
    body = payload
    if isinstance(body, Mapping) and isinstance(body.get("request"), Mapping):
        body = body["request"]
    if not isinstance(body, Mapping):
        raise NotAllowed(title="No valid object data received.")
    inner = body.get("Object")
    obj = dict(inner) if isinstance(inner, Mapping) else dict(body)
    attributes = obj.pop("Attribute", None)
    if attributes is None and obj is not body:
        attributes = body.get("Attribute")
    return obj, attributes


def _attribute_items(items: Any) -> list[Any]:
    if items is None or items == "":
        return []
    if isinstance(items, Mapping):
        return [items]
    return list(items) if isinstance(items, list | tuple) else [items]


def _typed(items: list[Any], template: Template | None) -> list[Any]:
    """An attribute sent with its relation but no type takes the template's type for it (what
    PyMISP does before it sends one)."""
    if template is None:
        return items
    typed = []
    for item in items:
        if isinstance(item, Mapping) and not item.get("type"):
            element = template.elements.get(str(item.get("object_relation") or ""))
            if element is not None:
                item = {**item, "type": element.type}
        typed.append(item)
    return typed


async def _template_of(
    obj: Mapping[str, Any], path_template: tuple[str, str | None] | None
) -> Template | None:
    """The template the object is checked against: the one the path names (which must be
    known here: 404 otherwise), else the one its ``template_uuid`` and ``template_version``
    name, when known here at that version."""
    known = await templates()
    if path_template is not None:
        ident, version = path_template
        key = _as_uuid(ident)
        found = known.get(key) if key is not None else None
        if found is None or (version is not None and str(found.version) != version):
            raise TemplateNotFound()
        return found
    key = _as_uuid(obj.get("template_uuid"))
    found = known.get(key) if key is not None else None
    if found is not None and str(obj.get("template_version", "")).strip() == str(found.version):
        return found
    return None


async def _groups_usable(
    conn: Conn, viewer: Viewer, parts: Sequence[AttributeIn | ObjectIn]
) -> None:
    """A sharing group (distribution 4) must be one the caller may use; any other distribution
    has none. Sharing groups are never captured from these routes."""
    for part in parts:
        part.sharing_group = None
        if part.distribution == 4:
            if not await usable_group(conn, viewer, part.sharing_group_id):
                raise Forbidden(title=INVALID_GROUP)
        else:
            part.sharing_group_id = None


def _hash(relation: Any, category: Any, kind: Any, value1: Any, value2: Any) -> tuple[str, ...]:
    return (str(relation), str(category), str(kind), str(value1), str(value2 or ""))


async def _duplicate_of(conn: Conn, event_id: int, obj: ObjectIn) -> Any:
    """``checkForDuplicateObjects``: a live object of the event with the same template whose
    live attributes are the new one's (relation, category, type and value)."""
    new = [_hash(a.object_relation, a.category, a.type, a.value1, a.value2) for a in obj.attributes]
    rows = await conn.fetch(
        "SELECT o.id, o.uuid, a.object_relation, a.category, a.type, a.value1, a.value2 "
        "FROM objects o JOIN attributes a ON a.object_id = o.id AND NOT a.deleted "
        "WHERE o.event_id = $1 AND NOT o.deleted AND o.template_uuid IS NOT DISTINCT FROM $2 "
        "ORDER BY o.id, a.id",
        event_id, obj.template_uuid,
    )  # fmt: skip
    existing: dict[tuple[int, UUID], list[tuple[str, ...]]] = {}
    for r in rows:
        existing.setdefault((r["id"], r["uuid"]), []).append(
            _hash(r["object_relation"], r["category"], r["type"], r["value1"], r["value2"])
        )
    for (object_id, object_uuid), hashes in existing.items():
        if len(hashes) == len(new) and set(hashes) <= set(new):
            return {"id": object_id, "uuid": object_uuid}
    return None


def _failed(action: str, errors: Any) -> SaveFailed:
    return SaveFailed(controller="objects", action=action, model="Object", errors=errors)


async def add_object(
    uow: UnitOfWork,
    viewer: Viewer,
    event_ident: str,
    payload: Any,
    *,
    break_on_duplicate: bool,
    template: tuple[str, str | None] | None = None,
) -> Json:
    """``objects/add/{event}[/{template uuid}[/{version}]]``: the object with its attributes,
    answered as ``{"Object": {..., "Attribute": [...]}}``. Its references are left out, as
    MISP leaves them (``objectReferences/add`` adds them)."""
    if not viewer.may_add:
        raise NotPermitted(title="You don't have permissions to create objects.")
    obj_body, raw_attributes = _unwrapped(payload)
    break_on_duplicate = break_on_duplicate or _flag(obj_body.get("breakOnDuplicate", 0))
    known = await _template_of(obj_body, template)  # read once, before any transaction
    now = changes.epoch()
    async with uow:
        conn = await driver_in_transaction(uow.session)
        event = await store.visible_event(conn, event_ident, viewer)
        if event is None:
            raise EventNotFound()
        if not may_modify(viewer, event):
            raise Forbidden()
        items = _typed(_attribute_items(raw_attributes), known)
        if not items:
            raise _failed("add", {"Attribute": [NO_ATTRIBUTES]})
        if known is not None:
            obj_body |= known.fills()
        else:
            lacking = [f for f in _TEMPLATE_FIELDS if obj_body.get(f) is None]
            if lacking:
                raise _failed("add", {"template": [LACKING.format(field=lacking[0])]})
        obj_body.pop("ObjectReference", None)  # MISP's saveObject saves none
        try:
            obj = ObjectIn.model_validate({**obj_body, "Attribute": items})
        except ValidationError as error:
            problems = problems_of(error)
            raise _failed("add", {p.path: [p.message] for p in problems}) from None
        if known is not None:
            errors = conformity(known, [a.object_relation for a in obj.attributes])
            if errors:
                raise _failed("add", errors)
        await _groups_usable(conn, viewer, [obj, *obj.attributes])
        for attribute in obj.attributes:  # saveObject: the object's seen, unless its own
            attribute.first_seen = attribute.first_seen or obj.first_seen
            attribute.last_seen = attribute.last_seen or obj.last_seen
        if await store.objects_by_uuid(conn, [obj.uuid]):
            raise _failed("add", {"uuid": [NOT_UNIQUE]})
        taken = await store.attributes_by_uuid(conn, (a.uuid for a in obj.attributes))
        if taken:
            positions = [i for i, a in enumerate(obj.attributes) if a.uuid in taken]
            raise _failed("add", {f"Attribute.{i}.uuid": [NOT_UNIQUE] for i in positions})
        if break_on_duplicate:
            duplicate = await _duplicate_of(conn, event["id"], obj)
            if duplicate is not None:
                raise _failed("add", {"value": [DUPLICATE_OBJECT.format(**duplicate)]})
        object_ids = await store.upsert_objects(conn, event["id"], [obj], now=now, force=True)
        if obj.uuid not in object_ids:  # taken meanwhile, in another event
            raise _failed("add", {"uuid": [NOT_UNIQUE]})
        ids = await store.upsert_attributes(
            conn, event["id"], obj.attributes, now=now, object_ids=object_ids,
            object_of={a.uuid: obj.uuid for a in obj.attributes}, force=True,
        )  # fmt: skip
        await _tag(conn, viewer, event["id"], obj.attributes, ids)
        await changes.unpublish_event(conn, event["id"], now=now)
        await changes.announce(uow, conn, event["id"])
        row = await conn.fetchrow("SELECT * FROM objects WHERE id = $1", object_ids[obj.uuid])
        attributes = await conn.fetch(
            "SELECT * FROM attributes WHERE object_id = $1 ORDER BY id", row["id"]
        )
        await uow.commit()
    body = render_object(dict(row))
    body["Attribute"] = [render_attribute(dict(a))["Attribute"] for a in attributes]
    return {"Object": body}


async def _tag(
    conn: Conn, viewer: Viewer, event_id: int, attributes: Sequence[AttributeIn],
    ids: Mapping[UUID, int],
) -> None:  # fmt: skip
    if viewer.may_tag:
        links = [(ids[a.uuid], tag) for a in attributes if a.uuid in ids for tag in a.tags]
        await store.attach_attribute_tags(
            conn, event_id, links, create=creates_tags(viewer), org_id=tag_owner(viewer)
        )


async def _shown(conn: Conn, row: Mapping[str, Any], viewer: Viewer) -> Json:
    """``{"Object": {...}}`` as ``objects/view`` answers: the object, its ``Event``
    (``id``, ``info``, ``org_id``, ``orgc_id``), its live attributes the viewer may see (with
    their tags), and its live references."""
    body = render_object(dict(row))
    body["Event"] = {
        "id": str(row["event_id"]), "info": row["e_info"], "org_id": str(row["e_org_id"]),
        "orgc_id": str(row["e_orgc_id"]),
    }  # fmt: skip
    attributes = await store.object_attributes(conn, row["id"], viewer)
    tags = await store.attribute_tags_of(conn, [a["id"] for a in attributes])
    shown = []
    for attribute in attributes:
        rendered = render_attribute(dict(attribute))["Attribute"]
        exported = [(t, link) for t, link in tags.get(attribute["id"], []) if t["exportable"]]
        if exported:
            rendered["Tag"] = [render_tag(t, link) for t, link in exported]
        shown.append(rendered)
    body["Attribute"] = shown
    body["ObjectReference"] = await rendered_references(conn, row["id"])
    return {"Object": body}


def _sees_deleted(viewer: Viewer, row: Mapping[str, Any]) -> bool:
    """A soft-deleted object shows to whom ``events/view`` shows deleted parts: the
    organisation holding the event, sync users, site admins."""
    return not row["deleted"] or viewer.site_admin or viewer.may_sync \
        or row["e_org_id"] == viewer.org_id  # fmt: skip


async def view_object(uow: UnitOfWork, viewer: Viewer, ident: str) -> Json:
    """``objects/view/{id|uuid}``."""
    async with uow.driver() as conn:
        row = await store.visible_object(conn, ident, viewer, deleted=True)
        if row is None or not _sees_deleted(viewer, row):
            raise ObjectNotFound()
        return await _shown(conn, row, viewer)


async def object_exists(uow: UnitOfWork, viewer: Viewer, ident: str) -> bool:
    """``HEAD objects/view/{id|uuid}``."""
    async with uow.driver() as conn:
        row = await store.visible_object(conn, ident, viewer, deleted=True)
        return row is not None and _sees_deleted(viewer, row)


def _stored(row: Mapping[str, Any]) -> dict[str, Any]:
    """An ``attributes`` row as a payload :class:`AttributeIn` reads."""
    return {
        "uuid": str(row["uuid"]), "type": row["type"], "category": row["category"],
        "value1": row["value1"], "value2": row["value2"], "to_ids": row["to_ids"],
        "comment": row["comment"], "distribution": row["distribution"],
        "sharing_group_id": row["sharing_group_id"], "first_seen": row["first_seen"],
        "last_seen": row["last_seen"], "deleted": row["deleted"],
        "disable_correlation": row["disable_correlation"],
        "object_relation": row["object_relation"],
    }  # fmt: skip


def _changed_object(obj_body: Mapping[str, Any], row: Mapping[str, Any]) -> ObjectIn:
    """The object as ``deltaMerge`` leaves it: what the payload says of ``_EDITABLE``, the
    rest as stored."""
    merged = {
        "uuid": str(row["uuid"]), "name": row["name"],
        "meta-category": row["meta_category"] or row["name"],
        "comment": row["comment"], "template_version": row["template_version"],
        "distribution": row["distribution"], "sharing_group_id": row["sharing_group_id"],
        "first_seen": row["first_seen"], "last_seen": row["last_seen"],
    }  # fmt: skip
    merged |= {k: obj_body[k] for k in _EDITABLE if obj_body.get(k) is not None}
    try:
        return ObjectIn.model_validate(merged)
    except ValidationError as error:
        raise _failed("edit", {p.path: [p.message] for p in problems_of(error)}) from None


async def edit_object(uow: UnitOfWork, viewer: Viewer, ident: str, payload: Any) -> Json:
    """``objects/edit/{id|uuid}`` (``MispObject::deltaMerge``): the object's comment,
    distribution, template version and seen times as the payload says; each attribute sent
    with the uuid of one of the object's is changed when it differs, one with another uuid (or
    none) is added, and, when the payload lists attributes, the object's attributes it leaves
    out are deleted (soft). ``deleted`` in the payload deletes the object (soft). Answered as
    ``objects/view``."""
    if not viewer.may_add:
        raise NotPermitted()
    obj_body, raw_attributes = _unwrapped(payload)
    await templates()  # read once, before any transaction
    now = changes.epoch()
    async with uow:
        conn = await driver_in_transaction(uow.session)
        row = await store.visible_object(conn, ident, viewer, deleted=True)
        if row is None or not _sees_deleted(viewer, row):
            raise ObjectNotFound()
        if not may_modify(viewer, {"orgc_id": row["e_orgc_id"]}):
            raise Forbidden(title="Insufficient permissions to edit this object.")
        obj = _changed_object(obj_body, row)
        await _groups_usable(conn, viewer, [obj])
        known = await _template_of(
            {"template_uuid": row["template_uuid"], "template_version": row["template_version"]},
            None,
        )
        items = _typed(_attribute_items(raw_attributes), known)
        stored = {a["uuid"]: a for a in await store.object_attributes(conn, row["id"], viewer)}
        changed, errors = await _delta(conn, row, obj, items, stored)
        if known is not None:
            errors |= outside_template(
                known, [i.get("object_relation") if isinstance(i, Mapping) else None
                        for i in items],
            )  # fmt: skip
        if errors:
            raise _failed("edit", errors)
        await _groups_usable(conn, viewer, changed)
        await conn.execute(
            "UPDATE objects SET comment = $2, template_version = $3, distribution = $4, "
            "sharing_group_id = $5, first_seen = $6, last_seen = $7, timestamp = $8 "
            "WHERE id = $1",
            row["id"], obj.comment, obj.template_version, obj.distribution,
            obj.sharing_group_id, obj.first_seen, obj.last_seen, now,
        )  # fmt: skip
        ids = await store.upsert_attributes(
            conn, row["event_id"], changed, now=now, object_ids={row["uuid"]: row["id"]},
            object_of={a.uuid: row["uuid"] for a in changed}, force=True,
        )  # fmt: skip
        await _tag(conn, viewer, row["event_id"], changed, ids)
        sent = {a.uuid for a in changed} | {_as_uuid(i.get("uuid")) for i in items}
        if items:  # what the payload leaves out goes
            gone = [u for u in stored if u not in sent]
            await _delete_attributes(conn, row["event_id"], gone, now=now)
        if _flag(obj_body.get("deleted", 0)):
            await _soft_delete(conn, row, now=now)
        await changes.unpublish_event(conn, row["event_id"], now=now)
        await changes.announce(uow, conn, row["event_id"])
        fresh = await store.visible_object(conn, str(row["id"]), viewer, deleted=True)
        shown = await _shown(conn, fresh, viewer)
        await uow.commit()
    return shown


async def _delta(
    conn: Conn, row: Mapping[str, Any], obj: ObjectIn, items: list[Any],
    stored: Mapping[UUID, Any],
) -> tuple[list[AttributeIn], dict[str, list[str]]]:  # fmt: skip
    """The attributes of an edit that change or add to the object, and what is wrong with the
    others, by field."""
    changed: list[AttributeIn] = []
    errors: dict[str, list[str]] = {}
    fresh: list[tuple[int, AttributeIn]] = []
    for index, item in enumerate(items):
        if not isinstance(item, Mapping):
            errors[f"Attribute.{index}"] = ["Must be an object."]
            continue
        before = stored.get(_as_uuid(item.get("uuid")) or UUID(int=0))
        merged = dict(item)
        if before is not None:
            merged = _stored(before) | {k: v for k, v in item.items() if v is not None}
            if "value" in item and "value1" not in item:
                merged.pop("value1")
                merged.pop("value2")
        elif obj.first_seen is not None or obj.last_seen is not None:
            merged.setdefault("first_seen", obj.first_seen)
            merged.setdefault("last_seen", obj.last_seen)
        try:
            attribute = AttributeIn.model_validate(merged)
        except ValidationError as error:
            for problem in problems_of(error, f"Attribute.{index}"):
                errors.setdefault(problem.path, []).append(problem.message)
            continue
        if attribute.object_relation is None:
            errors[f"Attribute.{index}.object_relation"] = [
                "Object attribute sent, but no object_relation set."
            ]
            continue
        if before is None:
            fresh.append((index, attribute))
        elif _differs(attribute, before):
            changed.append(attribute)
    taken = await store.attributes_by_uuid(conn, (a.uuid for _, a in fresh))
    for index, attribute in fresh:
        other = taken.get(attribute.uuid)
        if other is not None and other["object_id"] != row["id"]:
            errors[f"Attribute.{index}.uuid"] = [NOT_UNIQUE]
        else:
            changed.append(attribute)
    return changed, errors


def _differs(attribute: AttributeIn, before: Mapping[str, Any]) -> bool:
    """Whether an attribute sent to ``objects/edit`` changes the one stored."""
    group = attribute.sharing_group_id if attribute.distribution == 4 else None
    now = attribute.columns(now=0) | {"sharing_group_id": group}
    return any(now[k] != before[k] for k in _CHECKED)


async def _delete_attributes(conn: Conn, event_id: int, uuids: Sequence[UUID], *, now: int) -> None:
    """Soft-delete attributes, and the references that point at them."""
    if not uuids:
        return
    await conn.execute(
        "UPDATE attributes SET deleted = true, timestamp = $3 "
        "WHERE event_id = $1 AND uuid = ANY($2::uuid[]) AND NOT deleted",
        event_id, list(uuids), now,
    )  # fmt: skip
    await conn.execute(
        "UPDATE object_references SET deleted = true, timestamp = $3 "
        "WHERE event_id = $1 AND referenced_uuid = ANY($2::uuid[]) AND NOT deleted",
        event_id, list(uuids), now,
    )  # fmt: skip


async def _soft_delete(conn: Conn, row: Mapping[str, Any], *, now: int) -> None:
    """``deleteObject`` (soft): the object and its attributes are kept, ``deleted``, for sync;
    the references that point at it are deleted too."""
    await conn.execute(
        "UPDATE objects SET deleted = true, timestamp = $2 WHERE id = $1", row["id"], now
    )
    await conn.execute(
        "UPDATE attributes SET deleted = true, timestamp = $2 WHERE object_id = $1 AND NOT deleted",
        row["id"], now,
    )  # fmt: skip
    await conn.execute(
        "UPDATE object_references SET deleted = true, timestamp = $3 "
        "WHERE event_id = $1 AND referenced_uuid = $2 AND NOT deleted",
        row["event_id"], row["uuid"], now,
    )  # fmt: skip


async def delete_object(uow: UnitOfWork, viewer: Viewer, ident: str, *, hard: bool) -> Json:
    """``objects/delete/{id|uuid}[/hard]``: soft (``deleted``, kept for sync) unless ``hard``,
    which removes the object, its attributes and references, and the references to it. As in
    MISP, whoever may modify the event may delete hard; a soft-deleted object may still be
    deleted (again, or hard)."""
    if not viewer.may_add:
        raise NotPermitted(title="You don't have permissions to delete objects.")
    now = changes.epoch()
    async with uow:
        conn = await driver_in_transaction(uow.session)
        row = await store.visible_object(conn, ident, viewer, deleted=True)
        if row is None or not _sees_deleted(viewer, row):
            raise ObjectNotFound()
        if not may_modify(viewer, {"orgc_id": row["e_orgc_id"]}):
            raise Forbidden()
        if hard:
            await conn.execute(
                "DELETE FROM object_references WHERE event_id = $1 AND referenced_uuid = $2",
                row["event_id"], row["uuid"],
            )  # fmt: skip
            await conn.execute("DELETE FROM objects WHERE id = $1", row["id"])
        else:
            await _soft_delete(conn, row, now=now)
        await changes.unpublish_event(conn, row["event_id"], now=now)
        await changes.announce(uow, conn, row["event_id"])
        await uow.commit()
    event_id = str(row["event_id"])
    return {"saved": True, "success": True, "name": "Object deleted",
            "message": "Object deleted", "url": f"/objects/delete/{event_id}",
            "id": event_id}  # fmt: skip
