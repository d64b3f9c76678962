"""MISP's separate sighting push (``Sighting::pushSightings``), both ends of it.

Receiving (what a pushing MISP or Tessera calls, ``SightingsController``):

* ``sightings/filterSightingUuidsForPush/{event}``: a sync user posts sighting uuids of an
  event it sees; the answer is those known here (it sends the others).
* ``sightings/bulkSaveSightings/{event}``: a sync user (or one who may sight) posts
  sightings; those whose uuid is new here, of an attribute of that event the caller sees,
  are saved (``Sighting::bulkSaveSightings``). A sync user's sighting keeps the
  organisation it names (found or created by uuid), or none (``org_id`` 0); anyone else's
  is their organisation's. The event's ``sighting_timestamp`` moves on.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from tessera.common.db import UnitOfWork, driver_in_transaction
from tessera.sync import directory, store
from tessera.sync.service import changes
from tessera.sync.service.problems import EventNotFound, NotAllowed, NotPermitted
from tessera.sync.store import sightings as rows
from tessera.sync.viewer import Viewer
from tessera.sync.wire import OrgIn, SightingIn

__all__ = ["bulk_save_sightings", "known_sightings"]

Json = dict[str, Any]

NOT_ACCESSIBLE = "Event not found or not accessible by this user."


def _uuid(value: Any) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value))
    except ValueError:
        return None


# --- receiving ---------------------------------------------------------------------------------


async def known_sightings(uow: UnitOfWork, viewer: Viewer, ident: str, payload: Any) -> list[str]:
    """``sightings/filterSightingUuidsForPush/{event id|uuid}`` (sync users): of the posted
    sighting uuids, those of the event known here. 404 "Event not found" when the caller
    does not see the event."""
    if not viewer.may_sync:
        raise NotPermitted()
    posted = payload if isinstance(payload, list) else []
    uuids = [u for u in map(_uuid, posted) if u is not None]
    async with uow.driver() as conn:
        event = await store.visible_event(conn, ident, viewer)
        if event is None:
            raise EventNotFound(title="Event not found")
        found = await rows.known_sighting_uuids(conn, uuids, event_id=int(event["id"]))
    return [str(u) for u in found]


@dataclass(frozen=True)
class _Offered:
    sighting: SightingIn
    attribute_uuid: uuid.UUID
    names_org: bool
    """the sender said whose it is (``org_id``); a sync user's sighting keeps it"""


def _offered(payload: Any) -> list[_Offered]:
    """The posted sightings (a list, or ``{"Sighting": [...]}``) that read as sightings of an
    attribute; the others are left out, as MISP saves nothing of them."""
    items = payload
    if isinstance(payload, Mapping):
        items = payload.get("Sighting") or []
    found = []
    for item in items if isinstance(items, list) else []:
        if not isinstance(item, Mapping):
            continue
        attribute_uuid = _uuid(item.get("attribute_uuid"))
        if attribute_uuid is None:
            continue
        names_org = "org_id" in item
        body = dict(item)
        if not names_org or str(item.get("org_id")) in ("0", "") or not item.get("Organisation"):
            body.pop("Organisation", None)
        try:
            sighting = SightingIn.model_validate(body)
        except ValidationError:
            continue
        found.append(_Offered(sighting, attribute_uuid, names_org))
    return found


async def _org_id(conn: Any, org: OrgIn, viewer: Viewer, now: datetime) -> int:
    """``Organisation::captureOrg``: the organisation by uuid (created if unknown), else by
    name; the caller's when neither is known."""
    if org.uuid is not None:
        return await directory.ensure_organisation(conn, org.uuid, org.name or str(org.uuid), now)
    found = await conn.fetchval("SELECT id FROM organisations WHERE name = $1", org.name)
    return viewer.org_id if found is None else int(found)


async def bulk_save_sightings(uow: UnitOfWork, viewer: Viewer, ident: str, payload: Any) -> Json:
    """``sightings/bulkSaveSightings/{event id|uuid}`` (sync users and those who may sight):
    the posted sightings new here (by uuid), of attributes of that event the caller sees,
    saved; ``{"saved": true, "success": "N sightings added."}``, or ``saved`` false and
    "No sightings added.". Posting them again saves nothing. 405 when the caller does not
    see the event (MISP's words)."""
    if not (viewer.may_sync or viewer.may_sight):
        raise NotPermitted()
    offered = _offered(payload)
    now = changes.epoch()
    now_dt = datetime.fromtimestamp(now, UTC)
    async with uow:
        conn = await driver_in_transaction(uow.session)
        event = await store.visible_event(conn, ident, viewer)
        if event is None:
            raise NotAllowed(title=NOT_ACCESSIBLE)
        event_id = int(event["id"])
        known = set(await rows.known_sighting_uuids(conn, [o.sighting.uuid for o in offered]))
        attributes = await rows.visible_attribute_ids(
            conn, viewer, event_id, {o.attribute_uuid for o in offered}
        )
        new: list[Json] = []
        for item in offered:
            sighting, attribute_id = item.sighting, attributes.get(item.attribute_uuid)
            if sighting.uuid in known or attribute_id is None:
                continue
            known.add(sighting.uuid)
            if sighting.type == 2:  # MISP drops the caller's organisation's earlier one
                await rows.delete_expirations(conn, org_id=viewer.org_id, attribute_id=attribute_id)
            org_id: int | None = viewer.org_id
            if viewer.may_sync and item.names_org:
                org_id = None
                if sighting.org is not None:
                    org_id = await _org_id(conn, sighting.org, viewer, now_dt)
            new.append({**sighting.columns(now=now), "attribute_id": attribute_id,
                        "event_id": event_id, "org_id": org_id})  # fmt: skip
        saved = await rows.insert_sightings(conn, new)
        if saved:
            await rows.bump_sighting_timestamp(conn, event_id, now=now)
        await uow.commit()
    if saved:
        return {"saved": True, "success": f"{saved} sightings added."}
    return {"saved": False, "success": "No sightings added."}
