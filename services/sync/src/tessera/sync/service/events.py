"""MISP events through MISP's routes: ``events/add``, ``view``, ``edit``, ``delete``,
``publish`` and ``unpublish``, as ``EventsController`` and ``Event::_add`` / ``_edit`` do them.

Every use case is one transaction; what it answers is read in that transaction, after its
writes (MISP answers ``add`` and ``edit`` with the event as ``events/view`` shows it to the
caller). A creation or a change appends ``sync.event.updated``, a publication
``sync.event.published``, both through the outbox; a publication also queues the event's
push to every server that takes it (``push_jobs.push_published``), in the same transaction.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from anyio import to_thread

from tessera.common.db import UnitOfWork, driver_in_transaction
from tessera.sync import access, directory, signing, store
from tessera.sync.service import changes, protection
from tessera.sync.service.parts import write_parts
from tessera.sync.service.problems import (
    Blocked,
    EventExists,
    EventNotFound,
    Forbidden,
    NotAllowed,
    NotAuthorised,
    NotPermitted,
    SaveFailed,
)
from tessera.sync.service.push_jobs import push_published
from tessera.sync.service.sharing import resolve_groups
from tessera.sync.viewer import Viewer
from tessera.sync.wire import (
    DEFAULT_EVENT_DISTRIBUTION,
    EventIn,
    InvalidPayload,
    Problem,
    parse_event,
    render_event,
)

__all__ = [
    "Answer",
    "Signed",
    "ViewOptions",
    "add_event",
    "delete_event",
    "edit_event",
    "event_exists",
    "filter_for_push",
    "may_modify",
    "publish_event",
    "set_protected",
    "unpublish_event",
    "view_event",
]

Conn = Any
Json = dict[str, Any]

EMPTY_PUBLISHED = "Received a published event that was empty. Event add process blocked."
NOT_NEWER = "Event could not be saved: Event in the request not newer than the local copy."
NOT_CREATOR = (
    "Event could not be saved: The user used to edit the event is not authorised to do so. "
    "This can be caused by the user not being of the same organisation as the original "
    "creator of the event whilst also not being a site administrator."
)
_LARGE = 500
"""attributes (or objects) from which reading or rendering an event leaves the event loop"""
# what an edit leaves as it was when the payload does not say (Event::_edit's fieldList)
_KEPT_ON_EDIT = (
    "date", "info", "threat_level_id", "analysis", "distribution", "sharing_group_id",
    "disable_correlation", "extends_uuid",
)  # fmt: skip


@dataclass(frozen=True)
class ViewOptions:
    """How ``events/view`` shows an event: ``deleted`` 0 (live parts), 1 (all), 2 (only the
    deleted ones); sightings or not; only the event's metadata (``metadata:1``)."""

    deleted: int = 0
    sightings: bool = True
    metadata: bool = False
    exclude_local_tags: bool | None = None
    """None: as MISP does, for a sync user (local tags never leave this instance)"""


@dataclass(frozen=True)
class Signed:
    """The body of an ``events/add`` or ``events/edit`` as it came (what a signature
    covers), its ``x-pgp-signature``, and the instance's keys (to sign what it protects)."""

    body: bytes
    signature: str | None
    keys: protection.Keyring


async def _check_signature(
    conn: Conn, viewer: Viewer, signed: Signed | None, event: EventIn, *, uuid: UUID | None
) -> None:
    """``EventsController::add`` / ``edit``: a sync user's (not a site admin's) protected
    event must come signed by a key it trusts (405, MISP's words, otherwise)."""
    if not viewer.may_sync or viewer.site_admin:
        return
    try:
        await protection.check(
            conn, body=signed.body if signed else b"", signature=signed and signed.signature,
            event=event, uuid=uuid,
        )  # fmt: skip
    except signing.BadSignature as bad:
        no_key = str(bad) == protection.NO_SIGNATURE
        raise NotAllowed(title=protection.NO_SIGNATURE if no_key else protection.FAILED) from None


@dataclass(frozen=True)
class Answer:
    """An event as the caller sees it, and what was left out of their payload (MISP adds
    those as ``errors`` to its answer)."""

    event: Json
    errors: dict[str, list[str]] | None = None

    def body(self) -> Json:
        return self.event | ({"errors": self.errors} if self.errors else {})


def may_modify(viewer: Viewer, event: Mapping[str, Any]) -> bool:
    """``ACLComponent::canModifyEvent``: a site admin, or a user who may modify the data of
    the organisation that created the event."""
    return viewer.site_admin or (viewer.may_add and event["orgc_id"] == viewer.org_id)


def unwrap(payload: Any, key: str) -> dict[str, Any]:
    """MISP's request bodies: ``{"response": ...}`` (an export), ``{"request": ...}``,
    ``{key: {...}}`` or the object itself."""
    body = payload
    for wrapper in ("response", "request"):
        if isinstance(body, Mapping) and isinstance(body.get(wrapper), Mapping):
            body = body[wrapper]
    if isinstance(body, Mapping) and isinstance(body.get(key), Mapping):
        body = body[key]
    if not isinstance(body, Mapping) or not body:
        raise NotAllowed(title=f"No valid {key.lower()} data received.")
    return dict(body)


def _problems(problems: list[Problem]) -> dict[str, list[str]] | None:
    if not problems:
        return None
    found: dict[str, list[str]] = {}
    for problem in problems:
        found.setdefault(problem.path or "Event", []).append(problem.message)
    return found


async def render(
    conn: Conn, event_id: int, viewer: Viewer, options: ViewOptions = ViewOptions()
) -> Json | None:
    """``events/view`` of the event for the viewer (None when they may not see it)."""
    loaded = await store.load_event(
        conn,
        event_id,
        viewer,
        deleted=options.deleted == 1,
        deleted_only=options.deleted == 2,
        sightings=options.sightings,
        metadata=options.metadata,
    )
    if loaded is None:
        return None
    exclude = options.exclude_local_tags
    if exclude is None:
        exclude = viewer.may_sync and not viewer.site_admin
    arguments = loaded.render_arguments() | {"exclude_local_tags": exclude}
    if len(loaded.attributes) < _LARGE:
        rendered = render_event(loaded.event, **arguments)
    else:  # CPU-bound: off the event loop
        rendered = await to_thread.run_sync(
            functools.partial(render_event, loaded.event, **arguments)
        )
    if options.metadata:
        for key in ("Attribute", "ShadowAttribute", "Object", "EventReport"):
            rendered["Event"].pop(key, None)
    return rendered


# --- reading ----------------------------------------------------------------------------------


async def view_event(uow: UnitOfWork, viewer: Viewer, ident: str, options: ViewOptions) -> Json:
    """``events/view/{id|uuid}``; 404 "Invalid event" for what the viewer may not see."""
    async with uow.driver() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
        row = await store.visible_event(conn, ident, viewer)
        rendered = None if row is None else await render(conn, row["id"], viewer, options)
    if rendered is None:
        raise EventNotFound()
    return rendered


async def event_exists(uow: UnitOfWork, viewer: Viewer, ident: str) -> bool:
    """``HEAD events/view/{id|uuid}``."""
    async with uow.driver() as conn:
        return await store.visible_event(conn, ident, viewer) is not None


async def filter_for_push(uow: UnitOfWork, viewer: Viewer, payload: Any) -> list[str]:
    """``events/filterEventIdsForPush``, which a pushing server asks first: of its
    ``[{"Event": {"uuid", "timestamp"}}]``, the uuids it should send — those not here, and
    those here older and ``locked`` (came by sync; an event made here is never overwritten
    by a push). A sync user's route. Unlike MISP, a blocklisted uuid is not asked for either
    (``events/add`` would refuse it)."""
    if not viewer.may_sync:
        raise NotPermitted()
    incoming: dict[UUID, int] = {}
    for item in payload if isinstance(payload, list) else []:
        event = item.get("Event", item) if isinstance(item, Mapping) else None
        if not isinstance(event, Mapping):
            continue
        try:
            incoming[UUID(str(event["uuid"]))] = int(event.get("timestamp") or 0)
        except (KeyError, ValueError, TypeError):
            continue  # no event we could take
    if not incoming:
        return []
    async with uow.driver() as conn:
        rows = await conn.fetch(
            "SELECT uuid, timestamp, locked FROM events WHERE uuid = ANY($1::uuid[])",
            list(incoming),
        )
        blocked = await conn.fetch(
            "SELECT event_uuid FROM event_blocklists WHERE event_uuid = ANY($1::uuid[])",
            list(incoming),
        )
    for row in rows:
        if row["timestamp"] >= incoming[row["uuid"]] or not row["locked"]:
            incoming.pop(row["uuid"], None)
    for row in blocked:
        incoming.pop(row["event_uuid"], None)
    return [str(u) for u in incoming]


# --- writing ----------------------------------------------------------------------------------


async def _parse(body: dict[str, Any], *, action: str, ident: str | None = None) -> EventIn:
    """The payload read as MISP reads it (off the event loop when it is large)."""
    parse = functools.partial(
        parse_event, body, default_distribution=DEFAULT_EVENT_DISTRIBUTION, drop_invalid=True
    )
    size = sum(len(v) for k in ("Attribute", "Object") if isinstance(v := body.get(k), list))
    try:
        return parse() if size < _LARGE else await to_thread.run_sync(parse)
    except InvalidPayload as invalid:
        raise SaveFailed(
            controller="events", action=action, model="Event", ident=ident,
            errors={"Event": invalid.by_field()},
        ) from None  # fmt: skip


async def _creator(conn: Conn, viewer: Viewer, event: EventIn) -> tuple[int, UUID]:
    """The creator organisation: the caller's, unless a sync user (or a site admin) names
    another one (``Orgc``), found or created by uuid (``EventsController::add``)."""
    orgc = event.orgc
    if viewer.may_sync and orgc is not None and orgc.uuid is not None:
        org_id = await directory.ensure_organisation(
            conn, orgc.uuid, orgc.name or str(orgc.uuid), datetime.now(UTC)
        )
        return org_id, orgc.uuid
    return viewer.org_id, viewer.org_uuid


async def add_event(
    uow: UnitOfWork, viewer: Viewer, payload: Any, *, metadata: bool, signed: Signed | None = None
) -> Answer:
    """``events/add`` (``Event::_add``): the caller's organisation holds the event and, unless
    a sync user names another, created it; refused when its uuid or creator is blocklisted
    (403), when it exists (404 with ``Location``), when it is invalid (403, MISP's
    ``saveFailResponse``), when a sync user's protected event is not signed by a key it lists
    (405). A user who may not publish adds it unpublished. A protected event added by a user
    (not by sync) trusts this instance's key besides those it lists."""
    if not viewer.may_add:
        raise NotPermitted()
    event = await _parse(unwrap(payload, "Event"), action="add")
    now = changes.epoch()
    async with uow:
        conn = await driver_in_transaction(uow.session)
        if event.uuid is not None and await store.blocked_event(conn, event.uuid):
            raise Blocked()
        if event.published and not (event.attributes or event.objects or event.reports):
            raise SaveFailed(controller="events", action="add", model="Event",
                             errors={"Event": EMPTY_PUBLISHED})  # fmt: skip
        if event.uuid is not None:
            await _refuse_existing(conn, event.uuid)
        await _check_signature(conn, viewer, signed, event, uuid=None)
        orgc_id, orgc_uuid = await _creator(conn, viewer, event)
        if await store.blocked_org(conn, orgc_uuid):
            raise Blocked(title="Event blocked by organisation blocklist.")
        if not viewer.may_publish:
            event.published = False
        group_id, dropped = await resolve_groups(
            conn, viewer, event, capture=viewer.may_sync, owner_org_id=orgc_id
        )
        event_id = await store.insert_event_row(
            conn, event, org_id=viewer.org_id, orgc_id=orgc_id, user_id=viewer.user_id,
            sharing_group_id=group_id, now=now,
        )  # fmt: skip
        if event_id is None:  # added meanwhile
            await _refuse_existing(conn, event.uuid)
            raise EventNotFound()
        written = await write_parts(conn, event_id, event, viewer, now=now, edit=False)
        await _keep_keys(conn, viewer, event_id, event, signed)
        await store.refresh_event(conn, event_id)
        if event.published:
            await _publish(conn, event_id, now=now)
            await push_published(uow, conn, event_id, requested_by=viewer.user_uuid)
        await changes.announce(uow, conn, event_id, updated=True, published=event.published,
                               source=_source(viewer))  # fmt: skip
        rendered = await render(conn, event_id, viewer, ViewOptions(metadata=metadata))
        await uow.commit()
    assert rendered is not None  # the caller's organisation holds it: they see it
    return Answer(rendered, _problems([*event.dropped, *dropped, *written.dropped]))


async def _keep_keys(
    conn: Conn, viewer: Viewer, event_id: int, event: EventIn, signed: Signed | None
) -> None:
    """The keys the event lists; an event a user (not a remote server) protects here trusts
    this instance's key too."""
    by_user = not (viewer.may_sync and not viewer.site_admin)
    own = signed.keys if signed is not None and event.protected and by_user else None
    await protection.keep_keys(conn, event_id, event, add_own=own)


def _source(viewer: Viewer) -> str:
    """A sync user's add or edit is a remote server's push."""
    return "push" if viewer.may_sync and not viewer.site_admin else changes.SOURCE


async def _refuse_existing(conn: Conn, event_uuid: UUID | None) -> None:
    found = await conn.fetchval("SELECT id FROM events WHERE uuid = $1", event_uuid)
    if found is not None:
        raise EventExists(headers={"Location": f"/sync/events/{found}"})


async def _publish(conn: Conn, event_id: int, *, now: int) -> None:
    await conn.execute(
        "UPDATE events SET published = true, publish_timestamp = $2 WHERE id = $1",
        event_id,
        now,
    )


def _merged(body: dict[str, Any], row: Mapping[str, Any]) -> dict[str, Any]:
    """The edit's payload with what it leaves out taken from the event (``Event::_edit``
    recovers them), and what an edit never changes (``locked``, ``protected``, the last
    publication) as it is."""
    merged = dict(body)
    for key in _KEPT_ON_EDIT:
        if merged.get(key) is None:
            value = row[key]
            merged[key] = str(value) if isinstance(value, UUID) else value
    merged["uuid"] = str(row["uuid"])
    merged["locked"] = row["locked"]
    merged["protected"] = row["protected"]
    merged["publish_timestamp"] = row["publish_timestamp"]
    return merged


def _event_changed(event: EventIn, row: Mapping[str, Any], group_id: int | None) -> bool:
    columns = event.columns(now=0)
    compared = ("date", "info", "threat_level_id", "analysis", "distribution", "published",
                "disable_correlation", "extends_uuid")  # fmt: skip
    return any(columns[k] != row[k] for k in compared) or group_id != row["sharing_group_id"]


async def edit_event(
    uow: UnitOfWork,
    viewer: Viewer,
    ident: str,
    payload: Any,
    *,
    metadata: bool,
    signed: Signed | None = None,
) -> Answer:
    """``events/edit/{id|uuid}`` (``Event::_edit``): parts are merged by uuid. A sync user's
    copy must be newer than the event here (403 "not newer" otherwise) and keeps its
    timestamps; a user's edit takes the time of the edit. Only the creator organisation, a
    site admin, or a sync user for an event that came by sync (``locked``) may edit; a sync
    user's edit of a protected event must be signed by a key the event here trusts (405)."""
    if not viewer.may_add:
        raise NotPermitted()
    now = changes.epoch()
    async with uow:
        conn = await driver_in_transaction(uow.session)
        row = await store.visible_event(conn, ident, viewer)
        if row is None:
            raise EventNotFound()
        if not may_modify(viewer, row) and not viewer.may_sync:
            raise NotAuthorised()
        event = await _parse(_merged(unwrap(payload, "Event"), row), action="edit",
                             ident=str(row["id"]))  # fmt: skip
        await _check_signature(conn, viewer, signed, event, uuid=row["uuid"])
        as_sync = viewer.may_sync and not viewer.site_admin
        refused = None
        if as_sync and event.timestamp is not None and event.timestamp <= row["timestamp"]:
            refused = NOT_NEWER
        elif not access.may_edit_event(viewer, orgc_id=row["orgc_id"], locked=row["locked"]):
            refused = NOT_CREATOR
        if refused is not None:
            raise SaveFailed(controller="events", action="edit", model="Event",
                             ident=str(row["id"]), errors=refused)  # fmt: skip
        if not viewer.may_publish:
            event.published = False
        group_id, dropped = await resolve_groups(
            conn, viewer, event, capture=viewer.may_sync, owner_org_id=row["orgc_id"]
        )
        written = await write_parts(conn, row["id"], event, viewer, now=now, edit=True)
        await protection.keep_keys(conn, row["id"], event)
        # a sync user's newer copy is written whatever changed (its timestamp, at least)
        changed = as_sync or written.changes > 0 or _event_changed(event, row, group_id)
        if changed:
            if not as_sync:
                event.timestamp = now
            await store.upsert_event_row(
                conn, event, org_id=row["org_id"], orgc_id=row["orgc_id"],
                user_id=row["user_id"], sharing_group_id=group_id, now=now, force=not as_sync,
            )  # fmt: skip
            await store.refresh_event(conn, row["id"])
            if event.published:
                await _publish(conn, row["id"], now=now)
                await push_published(uow, conn, row["id"], requested_by=viewer.user_uuid)
            await changes.announce(uow, conn, row["id"], updated=True,
                                   published=event.published, source=_source(viewer))  # fmt: skip
        rendered = await render(conn, row["id"], viewer, ViewOptions(metadata=metadata))
        await uow.commit()
    if rendered is None:
        raise EventNotFound()
    return Answer(rendered, _problems([*event.dropped, *dropped, *written.dropped]))


async def delete_event(uow: UnitOfWork, viewer: Viewer, ident: str) -> Json:
    """``events/delete/{id|uuid}``: the event and everything in it are gone, and its uuid is
    blocklisted (``MISP.enableEventBlocklisting``, on by default) so that no pull brings it
    back. 404 for an event the caller may not see, 403 for one they may not delete."""
    if not viewer.may_add:
        raise NotPermitted()
    async with uow:
        conn = await driver_in_transaction(uow.session)
        row = await store.visible_event(conn, ident, viewer)
        if row is None:
            raise EventNotFound()
        if not may_modify(viewer, row):
            raise SaveFailed(controller="events", action="delete", model="Event",
                             errors="Event was not deleted.")  # fmt: skip
        orgc = await conn.fetchval("SELECT name FROM organisations WHERE id = $1", row["orgc_id"])
        await store.block_event(
            conn, row["uuid"], info=row["info"], orgc_name=orgc or "",
            comment="Automatically blocked by deleting event", now=datetime.now(UTC),
        )  # fmt: skip
        await changes.announce_deletion(uow, conn, row["id"])
        await conn.execute("DELETE FROM events WHERE id = $1", row["id"])
        await uow.commit()
    message = "Event deleted."
    return {"saved": True, "success": True, "name": message, "message": message,
            "url": f"/events/delete/{ident}", "id": ident}  # fmt: skip


async def publish_event(uow: UnitOfWork, viewer: Viewer, ident: str) -> Json:
    """``events/publish/{id|uuid}``: published now, and pushed to every server that takes
    it (a push job per server, queued with the publication: MISP's ``Event::publish``; hence
    its answer with background jobs, "Job queued")."""
    if not viewer.may_publish:
        raise NotPermitted()
    now = changes.epoch()
    async with uow:
        conn = await driver_in_transaction(uow.session)
        row = await store.visible_event(conn, ident, viewer)
        if row is None:
            raise EventNotFound(title="Invalid event.")
        if not (viewer.site_admin or row["orgc_id"] == viewer.org_id):
            raise NotAllowed()
        await _publish(conn, row["id"], now=now)
        await push_published(uow, conn, row["id"], requested_by=viewer.user_uuid)
        await changes.announce(uow, conn, row["id"], updated=False, published=True)
        await uow.commit()
    return _success("publish", row["id"], "Job queued")


async def unpublish_event(uow: UnitOfWork, viewer: Viewer, ident: str) -> Json:
    """``events/unpublish/{id|uuid}``: no longer published (its timestamp stays, as MISP
    saves only the flag)."""
    if not viewer.may_add:
        raise NotPermitted()
    async with uow:
        conn = await driver_in_transaction(uow.session)
        row = await store.visible_event(conn, ident, viewer)
        if row is None:
            raise EventNotFound()
        if not may_modify(viewer, row):
            raise Forbidden(title="You do not have the permission to do that.")
        await conn.execute("UPDATE events SET published = false WHERE id = $1", row["id"])
        await changes.announce(uow, conn, row["id"], updated=True)
        await uow.commit()
    return _success("unpublish", row["id"], "Event unpublished.")


async def set_protected(
    uow: UnitOfWork, viewer: Viewer, ident: str, *, protected: bool, keys: protection.Keyring
) -> Json:
    """``events/protect/{id|uuid}`` and ``events/unprotect/{id|uuid}``
    (``EventsController::__toggleProtect``): for who may modify the event (404 "Invalid
    event" for others, as MISP answers), which becomes newer and unpublished; an event
    protected here trusts this instance's key."""
    if not viewer.may_add:
        raise NotPermitted()
    now = changes.epoch()
    async with uow:
        conn = await driver_in_transaction(uow.session)
        row = await store.visible_event(conn, ident, viewer)
        if row is None or not may_modify(viewer, row):
            raise EventNotFound()
        await conn.execute(
            "UPDATE events SET protected = $2, timestamp = $3, published = false WHERE id = $1",
            row["id"], protected, now,
        )  # fmt: skip
        if protected:
            await protection.add_own_key(conn, row["id"], keys)
        await changes.announce(uow, conn, row["id"], updated=True)
        await uow.commit()
    action = "protect" if protected else "unprotect"
    mode = "protected" if protected else "unprotected"
    return _success(action, row["id"], f"Event switched to {mode} mode.")


def _success(action: str, event_id: int, message: str) -> Json:
    """``saveSuccessResponse('Events', action, id, ..., message)``."""
    return {"saved": True, "success": True, "name": message, "message": message,
            "url": f"/events/{action}/{event_id}", "id": str(event_id)}  # fmt: skip
