"""MISP's separate sighting push (``Sighting::pushSightings``), both ends of it.

Receiving (what a pushing MISP or Tessera calls, ``SightingsController``):

* ``sightings/filterSightingUuidsForPush/{event}``: a sync user posts sighting uuids of an
  event it sees; the answer is those known here (it sends the others).
* ``sightings/bulkSaveSightings/{event}``: a sync user (or one who may sight) posts
  sightings; those whose uuid is new here, of an attribute of that event the caller sees,
  are saved (``Sighting::bulkSaveSightings``). A sync user's sighting keeps the
  organisation it names (found or created by uuid), or none (``org_id`` 0); anyone else's
  is their organisation's. The event's ``sighting_timestamp`` moves on.

Sending (a step of a push job, ``service/push.py``): with the server's ``push_sightings``,
the remote's event index is read; each event it has whose ``sighting_timestamp`` here is
newer than there, that the push rules and the event's distribution let go (but not the
pass-along rule: sightings go back to the server an event came from, as in MISP), and that
this job does not send whole (an event sent whole carries its sightings), has its sightings
offered: the remote is asked which it has, and sent the rest.

Which sightings: MISP reads them as a user of the remote's organisation, under its sighting
policy (``Plugin.Sightings_policy``, default 0, the only one here): all of them when that
organisation holds the event here (its ``org_id``), else only that organisation's own.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import structlog
from pydantic import ValidationError

from tessera.common.consumers import Handling
from tessera.common.db import UnitOfWork, driver_in_transaction
from tessera.common.fetch import FetchError
from tessera.sync import directory, store
from tessera.sync.remote import Remote, RemoteError
from tessera.sync.service import changes
from tessera.sync.service.problems import EventNotFound, NotAllowed, NotPermitted
from tessera.sync.service.push_jobs import host_org_id, refusal
from tessera.sync.settings import Settings
from tessera.sync.store import sightings as rows
from tessera.sync.viewer import Viewer
from tessera.sync.wire import OrgIn, SightingIn

__all__ = [
    "SightingsPushed",
    "bulk_save_sightings",
    "known_sightings",
    "push_sightings",
]

log = structlog.stdlib.get_logger(__name__)

Json = dict[str, Any]

BATCH = 10_000
"""sighting uuids per ``filterSightingUuidsForPush`` and ``bulkSaveSightings`` request"""

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
        if "\x00" in sighting.source or (sighting.org and "\x00" in sighting.org.name):
            continue  # PostgreSQL's text cannot hold it
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


# --- sending -----------------------------------------------------------------------------------


@dataclass
class SightingsPushed:
    """What a push job's sighting step did: sightings sent, events they were of, bytes
    sent, and what went wrong (an event's failure leaves the other events' to go)."""

    sightings: int = 0
    events: int = 0
    bytes: int = 0
    errors: list[str] = field(default_factory=list)


def _wire(row: Mapping[str, Any]) -> Json:
    """A sighting as MISP's ``Sighting::attachToEvent`` gives it for sync."""
    found: Json = {
        "id": str(row["id"]),
        "attribute_id": str(row["attribute_id"]),
        "event_id": str(row["event_id"]),
        "org_id": str(row["og_id"] or 0),
        "date_sighting": str(row["date_sighting"]),
        "uuid": str(row["uuid"]),
        "source": row["source"] or "",
        "type": str(row["type"]),
        "attribute_uuid": str(row["attribute_uuid"]),
    }
    if row["og_id"] is not None:
        found["Organisation"] = {"id": str(row["og_id"]), "uuid": str(row["og_uuid"]),
                                 "name": row["og_name"]}  # fmt: skip
    return found


async def _event_sightings(
    uow: Handling,
    remote: Remote,
    server: Mapping[str, Any],
    event: Mapping[str, Any],
    *,
    filtered: bool,
    outcome: SightingsPushed,
) -> None:
    """One event's sightings the remote's organisation may be sent, less those it has."""
    every = server["remote_org_id"] is not None and event["org_id"] == server["remote_org_id"]
    event_uuid = str(event["uuid"])
    after: uuid.UUID | None = None
    sent = 0
    while True:
        async with uow.driver() as conn:
            batch = await rows.sighting_uuids_to_push(
                conn, int(event["id"]), org_id=server["remote_org_id"], every=every,
                after=after, limit=BATCH,
            )  # fmt: skip
        if not batch:
            break
        known: set[uuid.UUID | None] = set()
        if filtered:
            known = set(map(_uuid, await remote.known_sightings(event_uuid, list(map(str, batch)))))
        new = [u for u in batch if u not in known]
        if new:
            async with uow.driver() as conn:
                found = [_wire(r) for r in await rows.sightings_to_push(conn, event["id"], new)]
            await remote.save_sightings(event_uuid, found)
            sent += len(found)
            outcome.bytes += len(json.dumps(found))
        if len(batch) < BATCH:
            break
        after = batch[-1]
    if sent:
        outcome.sightings += sent
        outcome.events += 1


async def push_sightings(
    uow: Handling,
    remote: Remote,
    server: Mapping[str, Any],
    *,
    event_uuid: uuid.UUID | None,
    leave: set[uuid.UUID],
) -> SightingsPushed:
    """The sighting step of a push job (the module's docstring says which go): nothing
    unless the server's ``push_sightings``; only ``event_uuid``'s when the job is for one
    event; never those of the events in ``leave`` (the job sends them whole)."""
    outcome = SightingsPushed()
    if not server["push_sightings"]:
        return outcome
    if event_uuid is not None and event_uuid in leave:
        return outcome  # a job of one event, sent whole: no index to read
    try:
        version = await remote.version()
        index = await remote.index(etag=None, filters={})
    except (FetchError, RemoteError) as exc:
        outcome.errors.append(f"sightings: the remote's event index: {exc}")
        return outcome
    # an older MISP cannot say which sightings it has: all are sent, it keeps the new ones
    filtered = bool(version.get("filter_sightings"))
    entries = []
    for entry in index.entries or []:
        found = _uuid(entry.get("uuid")) if isinstance(entry, Mapping) else None
        if found is None or found in leave:
            continue
        try:
            entries.append((found, int(entry.get("sighting_timestamp") or 0)))
        except (TypeError, ValueError):
            continue
    async with uow.driver() as reader, reader.transaction(readonly=True):
        host = await host_org_id(reader, uow.get(Settings))
        events = await rows.sighting_push_events(reader, entries, event_uuid=event_uuid)
        groups = await store.sharing_group_views(
            reader, (e["sharing_group_id"] for e in events if e["sharing_group_id"])
        )
    for event in events:
        # sightings go back to the server the event came from: no pass-along rule here
        rules_view = {**event, "source_server_id": None}
        group = groups.get(event["sharing_group_id"] or 0)
        if refusal(rules_view, server, group, host_org_id=host) is not None:
            continue
        try:
            await _event_sightings(uow, remote, server, event, filtered=filtered, outcome=outcome)
        except (FetchError, RemoteError) as exc:
            outcome.errors.append(f"sightings of {event['uuid']}: {exc}"[:500])
    log.info("push_sightings", server_id=server["id"], events=outcome.events,
             sightings=outcome.sightings, errors=len(outcome.errors))  # fmt: skip
    return outcome
