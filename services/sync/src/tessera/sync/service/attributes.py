"""MISP attributes through MISP's routes: ``attributes/add/{event}``, ``view``, ``edit`` and
``delete``, as ``AttributesController`` and ``MispAttribute::captureAttribute`` /
``deleteAttribute`` do them.

An attribute with the type, category and value of a live attribute of its event (outside
objects) is refused, "A similar attribute already exists for this event." (or, with
``breakOnDuplicate:0``, updates that attribute); repeats inside one payload are collapsed to
the first. Each change moves the event's timestamp to now and unpublishes it
(``Event::unpublishEvent``), announced as ``sync.event.updated``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any
from uuid import UUID

from tessera.common.db import UnitOfWork, driver_in_transaction
from tessera.sync import store
from tessera.sync.service import changes
from tessera.sync.service.events import may_modify
from tessera.sync.service.parts import DUPLICATE, creates_tags, tag_owner
from tessera.sync.service.problems import (
    AttributeNotFound,
    EventNotFound,
    Forbidden,
    NotAllowed,
    NotPermitted,
    SaveFailed,
)
from tessera.sync.service.sharing import INVALID_GROUP, usable_group
from tessera.sync.viewer import Viewer
from tessera.sync.wire import AttributeIn, InvalidPayload, parse_attribute, render_attribute

__all__ = ["add_attributes", "delete_attribute", "edit_attribute", "view_attribute"]

Conn = Any
Json = dict[str, Any]

NOT_NEWER = "Attribute could not be saved: Attribute in the request not newer than the local copy."
NOT_UNIQUE = "The UUID provided is not unique"
# what an edit keeps when the payload does not say (AttributesController::edit)
_RECOVERED = (
    "type", "category", "to_ids", "distribution", "comment", "sharing_group_id",
    "object_relation", "first_seen", "last_seen", "disable_correlation",
)  # fmt: skip


def _items(payload: Any) -> list[Any]:
    """``attributes/add``'s body as the list of attributes it holds: one attribute, a list,
    ``{"Attribute": ...}`` of either, or one whose ``value`` is a list (or whose
    ``batch_import`` splits ``value`` by line): one attribute per value."""
    body = payload
    if isinstance(body, Mapping) and "Attribute" in body:
        body = body["Attribute"]
    items = list(body) if isinstance(body, list) else [body]
    if not items or not all(isinstance(i, Mapping) and i for i in items):
        raise NotAllowed(title="No valid attribute data received.")
    if len(items) == 1:
        one = dict(items[0])
        values = one.get("value")
        if one.get("batch_import") and isinstance(values, str):
            values = values.rstrip("\n").split("\n")
        if isinstance(values, list):
            return [one | {"value": value} for value in values]
    return items


def _tag(tag: Mapping[str, Any], link: Mapping[str, Any]) -> Json:
    numerical = tag.get("numerical_value")
    return {
        "id": str(tag["id"]),
        "name": tag["name"],
        "colour": tag["colour"],
        "exportable": bool(tag["exportable"]),
        "user_id": "0",
        "hide_tag": bool(tag.get("hide_tag", False)),
        "numerical_value": None if numerical is None else str(numerical),
        "is_galaxy": bool(tag.get("is_galaxy", False)),
        "is_custom_galaxy": False,
        "local_only": bool(tag.get("local_only", False)),
        "local": bool(link.get("local", False)),
        "relationship_type": link.get("relationship_type") or None,
    }


async def _shown(conn: Conn, row: Any) -> Json:
    """``{"Attribute": {...}}`` as ``attributes/view`` and ``attributes/edit`` answer: the
    attribute without ``value1``/``value2``, its tags as ``Tag``."""
    tags = (await store.attribute_tags_of(conn, [row["id"]])).get(row["id"], [])
    body = render_attribute(dict(row))["Attribute"]
    body.pop("value1")
    body.pop("value2")
    if tags:
        body["Tag"] = [_tag(tag, link) for tag, link in tags]
    return {"Attribute": body}


async def view_attribute(uow: UnitOfWork, viewer: Viewer, ident: str) -> Json:
    """``attributes/view/{id|uuid}``."""
    async with uow.driver() as conn:
        row = await store.visible_attribute(conn, ident, viewer, deleted=False)
        if row is None:
            raise AttributeNotFound()
        return await _shown(conn, row)


async def _same_value(conn: Conn, event_id: int, attribute: AttributeIn) -> UUID | None:
    """The live attribute of the event (outside objects) with this type, category and value."""
    found = await conn.fetchval(
        "SELECT uuid FROM attributes WHERE event_id = $1 AND object_id IS NULL AND NOT deleted "
        "AND type = $2 AND category = $3 AND md5(value1) = md5($4) AND md5(value2) = md5($5) "
        "AND value1 = $4 AND value2 = $5 ORDER BY id LIMIT 1",
        event_id, attribute.type, attribute.category, attribute.value1, attribute.value2,
    )  # fmt: skip
    return found


async def add_attributes(
    uow: UnitOfWork, viewer: Viewer, event_ident: str, payload: Any, *, break_on_duplicate: bool
) -> Json:
    """``attributes/add/{event}``: each attribute saved or refused on its own; the saved ones
    as MISP shows them (one: ``{"Attribute": {...}, "AttributeTag": [...]}``; more:
    ``{"Attribute": [...]}``) with the refusals as ``errors`` (``attribute_<n>``); none saved:
    403 with MISP's ``saveFailResponse``."""
    if not viewer.may_add:
        raise NotPermitted()
    items = _items(payload)
    now = changes.epoch()
    async with uow:
        conn = await driver_in_transaction(uow.session)
        event = await store.visible_event(conn, event_ident, viewer)
        if event is None:
            raise EventNotFound()
        if not may_modify(viewer, event):
            raise Forbidden()
        fails: dict[str, Any] = {}
        parsed: list[tuple[int, AttributeIn]] = []
        seen: set[tuple[str, str, str]] = set()
        for index, item in enumerate(items):
            try:
                attribute = parse_attribute(item)
            except InvalidPayload as invalid:
                fails[f"attribute_{index}"] = invalid.by_field()
                continue
            if attribute.distribution == 4:
                if not await usable_group(conn, viewer, attribute.sharing_group_id):
                    raise Forbidden(title=INVALID_GROUP)
            else:
                attribute.sharing_group_id = None
            attribute.sharing_group, attribute.object_relation = None, None
            key = (attribute.type, attribute.category, attribute.value)
            if key in seen and not attribute.deleted:
                continue  # a repeat inside the payload: collapsed
            seen.add(key)
            parsed.append((index, attribute))
        taken = await store.attributes_by_uuid(conn, (a.uuid for _, a in parsed))
        for index, attribute in parsed:
            if attribute.uuid in taken:
                fails[f"attribute_{index}"] = {"uuid": [NOT_UNIQUE]}
        parsed = [(i, a) for i, a in parsed if a.uuid not in taken]
        repeated = await store.duplicate_attributes(conn, event["id"], [a for _, a in parsed])
        kept = []
        for position, (index, attribute) in enumerate(parsed):
            if position in repeated:
                if break_on_duplicate:
                    fails[f"attribute_{index}"] = {"value": [DUPLICATE]}
                    continue
                attribute.uuid = await _same_value(conn, event["id"], attribute) or attribute.uuid
            kept.append(attribute)
        ids = await store.upsert_attributes(conn, event["id"], kept, now=now, force=True)
        links = [(ids[a.uuid], tag) for a in kept if a.uuid in ids for tag in a.tags]
        if viewer.may_tag:
            await store.attach_attribute_tags(
                conn, event["id"], links, create=creates_tags(viewer), org_id=tag_owner(viewer)
            )
        saved = [ids[a.uuid] for a in kept if a.uuid in ids]
        if not saved:
            errors = fails.get("attribute_0", fails) if len(items) == 1 else fails
            raise SaveFailed(controller="attributes", action="add", model="Attribute",
                             errors=errors)  # fmt: skip
        await changes.unpublish_event(conn, event["id"], now=now)
        await changes.announce(uow, conn, event["id"])
        body = await _added(conn, saved)
        await uow.commit()
    return body | ({"errors": fails} if fails else {})


async def _added(conn: Conn, ids: Sequence[int]) -> Json:
    rows = await conn.fetch("SELECT * FROM attributes WHERE id = ANY($1::bigint[]) ORDER BY id",
                            list(ids))  # fmt: skip
    tags = await store.attribute_tags_of(conn, ids)
    if len(rows) == 1:
        return render_attribute(dict(rows[0]), tags=tags.get(rows[0]["id"], []))
    listed = []
    for row in rows:
        body = render_attribute(dict(row))["Attribute"]
        if tags.get(row["id"]):
            body["Tag"] = [
                {"id": str(t["id"]), "name": t["name"], "colour": t["colour"],
                 "numerical_value": None if t["numerical_value"] is None
                 else str(t["numerical_value"])}
                for t, _ in tags[row["id"]]
            ]  # fmt: skip
        listed.append(body)
    return {"Attribute": listed}


def _recovered(body: dict[str, Any], row: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(body)
    for key in _RECOVERED:
        if merged.get(key) is None and row.get(key) is not None:
            merged[key] = row[key]
    if merged.get("value") is None and merged.get("value1") is None:
        merged["value"] = f"{row['value1']}|{row['value2']}" if row["value2"] else row["value1"]
    merged["uuid"] = str(row["uuid"])
    return merged


async def edit_attribute(uow: UnitOfWork, viewer: Viewer, ident: str, payload: Any) -> Json:
    """``attributes/edit/{id|uuid}``: what the payload leaves out stays as it was. A sync
    user's copy must be newer (405 otherwise); a user's edit takes the time of the edit."""
    if not viewer.may_add:
        raise NotPermitted()
    body = payload.get("Attribute", payload) if isinstance(payload, Mapping) else None
    if not isinstance(body, Mapping):
        raise NotAllowed(title="No valid attribute data received.")
    now = changes.epoch()
    async with uow:
        conn = await driver_in_transaction(uow.session)
        row = await store.visible_attribute(conn, ident, viewer, deleted=False)
        if row is None:
            raise AttributeNotFound()
        if not may_modify(viewer, {"orgc_id": row["e_orgc_id"]}):
            raise Forbidden()
        try:
            attribute = parse_attribute(_recovered(dict(body), row))
        except InvalidPayload as invalid:
            raise SaveFailed(controller="attributes", action="edit", model="Attribute",
                             errors=invalid.by_field()) from None  # fmt: skip
        as_sync = viewer.may_sync and not viewer.site_admin
        if as_sync and attribute.timestamp is not None and attribute.timestamp <= row["timestamp"]:
            raise NotAllowed(title=NOT_NEWER)
        if attribute.distribution == 4:
            if not await usable_group(conn, viewer, attribute.sharing_group_id):
                raise Forbidden(title=INVALID_GROUP)
        else:
            attribute.sharing_group_id = None
        attribute.sharing_group = None
        in_object = row["o_uuid"] is not None
        if not in_object and await store.duplicate_attributes(conn, row["event_id"], [attribute]):
            raise SaveFailed(controller="attributes", action="edit", model="Attribute",
                             errors={"value": [DUPLICATE]})  # fmt: skip
        owners = {"object_ids": {row["o_uuid"]: row["object_id"]},
                  "object_of": {attribute.uuid: row["o_uuid"]}} if in_object else {}  # fmt: skip
        if not as_sync:
            attribute.timestamp = None
        await store.upsert_attributes(conn, row["event_id"], [attribute], now=now,
                                      force=not as_sync, **owners)  # fmt: skip
        if viewer.may_tag:
            await store.attach_attribute_tags(
                conn, row["event_id"], [(row["id"], t) for t in attribute.tags],
                create=creates_tags(viewer), org_id=tag_owner(viewer),
            )  # fmt: skip
        if in_object:
            await conn.execute("UPDATE objects SET timestamp = $2 WHERE id = $1",
                               row["object_id"], now)  # fmt: skip
        await changes.unpublish_event(conn, row["event_id"], now=now)
        await changes.announce(uow, conn, row["event_id"])
        saved = await conn.fetchrow("SELECT * FROM attributes WHERE id = $1", row["id"])
        shown = await _shown(conn, saved)
        await uow.commit()
    return shown


async def delete_attribute(uow: UnitOfWork, viewer: Viewer, ident: str, *, hard: bool) -> Json:
    """``attributes/delete/{id|uuid}``: soft (``deleted``, kept for sync) unless ``hard``,
    which only a site admin may ask for. The creator organisation deletes; in an event that
    came by sync (``locked``), a sync user of the organisation holding it."""
    if not viewer.may_add or (hard and not viewer.site_admin):
        raise NotPermitted()
    now = changes.epoch()
    async with uow:
        conn = await driver_in_transaction(uow.session)
        row = await store.visible_attribute(conn, ident, viewer, deleted=hard)
        if row is None:
            raise AttributeNotFound()
        if not viewer.site_admin:
            if row["e_locked"]:
                allowed = row["e_org_id"] == viewer.org_id and viewer.may_sync
            else:
                allowed = row["e_orgc_id"] == viewer.org_id
            if not allowed:
                raise Forbidden()
        if hard:
            await conn.execute("DELETE FROM attributes WHERE id = $1", row["id"])
        else:
            await conn.execute(
                "UPDATE attributes SET deleted = true, timestamp = $2 WHERE id = $1",
                row["id"],
                now,
            )
            await conn.execute(
                "UPDATE object_references SET deleted = true, timestamp = $3 "
                "WHERE event_id = $1 AND referenced_uuid = $2",
                row["event_id"],
                row["uuid"],
                now,
            )
        await changes.unpublish_event(conn, row["event_id"], now=now)
        await changes.announce(uow, conn, row["event_id"])
        await uow.commit()
    return {"message": "Attribute deleted."}
