"""Pushing to a remote server, as MISP's ``Server::push`` does it.

A push is a job (``GET /sync/jobs/{id}`` shows its progress), queued by ``servers/push``,
``tessera-sync push`` or the publication of an event (one job per server, for that event:
``service/push_jobs.py``, which also holds the rules of what goes where), and run as two
kinds of messages the service sends itself through its outbox, like a pull:

1. ``sync.push.requested``: the published events here (with a live attribute or report), less
   those the server must not get — pulled from that very server (MISP's pass-along: an event
   never goes back where it came from), refused by the server's push rules (tags and creator
   organisations), or whose distribution keeps them here (``access.may_push_event``: 0 and 1
   stay, a sharing group's only to a server the group admits). The remote is asked which of
   the rest it wants (``events/filterEventIdsForPush``: those it has not, or has older and
   locked); one ``sync.push_item.requested`` per event it wants.
2. ``sync.push_item.requested``: the event rendered as ``events/view`` shows it to a site
   admin, rewritten as MISP's ``Event::__updateEventForSync`` rewrites it (elements of
   distribution 0 and 1 left out, 2 sent as 1, a sharing group's element only when the group
   admits the server, local and non-exportable tags left out, ``locked``), sent with
   ``events/add``; a 404 with ``Location`` (the remote has it) sends it again with
   ``events/edit``. A 403 "not newer than the local copy" is no failure: the event is counted
   as skipped. With the server's ``push_sightings`` the event carries its sightings.

With the server's ``push_sightings``, step 1 also offers the remote the sightings of the events
it has already (MISP's ``Sighting::pushSightings``, ``service/sighting_push.py``): those whose
sightings here are newer than its copy's, less what it has; the job counts them
(``sightings``).
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import structlog

from tessera.common.consumers import Handling
from tessera.common.db import UnitOfWork, driver_in_transaction
from tessera.common.fetch import FetchError, FetchResponse
from tessera.sync import access, exchange, store
from tessera.sync.crypto import KeyBox, UnreadableKey
from tessera.sync.events import PushItemRequested, PushRequested
from tessera.sync.remote import Remote, RemoteError
from tessera.sync.service import protection
from tessera.sync.service.events import NOT_NEWER, ViewOptions, render
from tessera.sync.service.push_jobs import (
    PushDisabled,
    host_org_id,
    queue_push,
    refusal,
    remote_server,
    rule_terms,
)
from tessera.sync.service.servers import remote_for, require_site_admin
from tessera.sync.service.sighting_push import SightingsPushed, push_sightings
from tessera.sync.settings import Settings
from tessera.sync.viewer import MispRole, Viewer

__all__ = [
    "PushDisabled",
    "prepare_for_push",
    "push_item",
    "refusal",
    "run_push",
    "start_push",
]

log = structlog.stdlib.get_logger(__name__)

FILTER_BATCH = 1000
"""events per ``events/filterEventIdsForPush`` request"""


def _now() -> datetime:
    return datetime.now(UTC)


async def start_push(
    uow: UnitOfWork, server_id: int, viewer: Viewer, *, event_uuid: uuid.UUID | None = None
) -> uuid.UUID:
    """Queue a push (of every event, or of one) for a site admin: its job's id, at once."""
    require_site_admin(viewer)
    return await queue_push(uow, server_id, event_uuid=event_uuid, requested_by=viewer.user_uuid)


async def run_push(uow: Handling, event: PushRequested) -> None:
    """Step 1: what may go, what the remote wants of it, one message per event to send."""
    keys = uow.get(KeyBox)
    async with uow:
        conn = await driver_in_transaction(uow.session)
        if not await exchange.begin_job(conn, event.job_id, now=_now()):
            return  # handled already (a redelivery)
        server = await exchange.server(conn, event.server_id)
        await uow.commit()
    if server is None:
        await _finish(uow, event.job_id, error="the server was deleted")
        return
    async with uow.driver() as reader, reader.transaction(readonly=True):
        host = await host_org_id(reader, uow.get(Settings))
        candidates = await exchange.push_candidates(reader, event_uuid=event.event_uuid)
        groups = await store.sharing_group_views(
            reader, (c["sharing_group_id"] for c in candidates if c["sharing_group_id"])
        )
    pushable = [
        c for c in candidates
        if refusal(c, server, groups.get(c["sharing_group_id"] or 0), host_org_id=host) is None
    ]  # fmt: skip
    wanted: list[uuid.UUID] = []
    sent = 0
    sighted = SightingsPushed()
    if pushable or server["push_sightings"]:
        try:
            async with remote_for(server, keys) as remote:
                await _require_sync_user(remote)
                for start in range(0, len(pushable), FILTER_BATCH):
                    batch = pushable[start : start + FILTER_BATCH]
                    request = [{"uuid": str(c["uuid"]), "timestamp": int(c["timestamp"])}
                               for c in batch]  # fmt: skip
                    sent += len(json.dumps(request))
                    missing = {_uuid(u) for u in await remote.missing(request)}
                    wanted += [c["uuid"] for c in batch if c["uuid"] in missing]
                # the events sent whole carry their sightings; the others' are offered now
                sighted = await push_sightings(
                    uow, remote, server, event_uuid=event.event_uuid, leave=set(wanted)
                )
        except (FetchError, RemoteError, UnreadableKey) as exc:
            step = "filterEventIdsForPush" if pushable else "sightings"
            await _finish(uow, event.job_id, error=f"{step}: {exc}"[:2000],
                          seen=len(candidates))  # fmt: skip
            return
    async with uow:
        if not await uow.claim():
            return
        conn = await driver_in_transaction(uow.session)
        await exchange.set_job(
            conn, event.job_id, seen=len(candidates), skipped=len(candidates) - len(wanted),
            total=len(wanted), bytes=sent + sighted.bytes, sightings=sighted.sightings,
        )  # fmt: skip
        if sighted.errors:
            await exchange.set_job(conn, event.job_id, error="; ".join(sighted.errors)[:2000])
        for event_uuid in wanted:
            uow.publish(
                PushItemRequested(
                    job_id=event.job_id, server_id=server["id"], event_uuid=event_uuid
                ),
                subject=str(event_uuid),
            )
        if not wanted:
            await exchange.set_job(conn, event.job_id, status="done", finished_at=_now())
        await uow.commit()
    log.info("push_filtered", job_id=str(event.job_id), seen=len(candidates),
             pushable=len(pushable), to_push=len(wanted),
             sightings=sighted.sightings)  # fmt: skip


def _uuid(value: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value))
    except ValueError:
        return None


async def _require_sync_user(remote: Remote) -> None:
    """``Server::checkVersionCompatibility``'s ``canPush``: our user there may sync."""
    me = await remote.me()
    role = me.get("Role") or {}
    if str(role.get("perm_sync")).lower() not in ("1", "true"):
        raise RemoteError("the remote user is not a sync user: the push is blocked")


async def _finish(uow: Handling, job_id: uuid.UUID, *, error: str | None = None,
                  **counts: int) -> None:  # fmt: skip
    async with uow:
        if not await uow.claim():
            return
        conn = await driver_in_transaction(uow.session)
        await exchange.set_job(
            conn, job_id, status="failed" if error else "done", error=error,
            finished_at=_now(), **counts,
        )  # fmt: skip
        await uow.commit()


# --- one event ---------------------------------------------------------------------------------


def _level(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


def _group_of(part: Mapping[str, Any]) -> int:
    return _level(part.get("sharing_group_id"))


def _element(
    part: dict[str, Any],
    server: access.RemoteServer,
    groups: Mapping[int, access.SharingGroupView],
) -> dict[str, Any] | None:
    """``Event::__update{Attribute,Object,EventReport}ForSync``: left out (None) when its
    distribution keeps it here; 2 sent as 1 unless the server is internal."""
    distribution = _level(part.get("distribution"))
    if not access.may_push_element(
        distribution, sharing_group=groups.get(_group_of(part)), server=server
    ):
        return None
    found = dict(part)
    found["distribution"] = str(access.pushed_distribution(distribution, internal=server.internal))
    return found


def _exportable(tags: Any, *, internal: bool) -> list[Any]:
    """``Event::__removeNonExportableTags``: a tag that is not exportable, or local (unless the
    server is internal), stays here."""
    kept = []
    for tag in tags or []:
        if not isinstance(tag, Mapping):
            continue
        if str(tag.get("exportable", True)).lower() in ("0", "false"):
            continue
        if str(tag.get("local", False)).lower() in ("1", "true") and not internal:
            continue
        kept.append(tag)
    return kept


def _attribute(
    attribute: dict[str, Any],
    server: access.RemoteServer,
    groups: Mapping[int, access.SharingGroupView],
    blocked_tags: set[str],
) -> dict[str, Any] | None:
    names = {str(t.get("name")) for t in attribute.get("Tag") or [] if isinstance(t, Mapping)}
    if blocked_tags & names:  # fetchEvent's blockedAttributeTags: the push rules' NOT tags
        return None
    found = _element(attribute, server, groups)
    if found is None:
        return None
    for key in ("id", "value1", "value2"):  # a new id there; MISP sends value only
        found.pop(key, None)
    if "Tag" in found:
        found["Tag"] = _exportable(found["Tag"], internal=server.internal)
    return found


def prepare_for_push(
    rendered: Mapping[str, Any],
    server: Mapping[str, Any],
    groups: Mapping[int, access.SharingGroupView],
) -> dict[str, Any]:
    """The event (as ``events/view`` renders it) as MISP sends it to ``server``
    (``Event::__prepareForPushToServer`` and ``__updateEventForSync``): who holds it here
    left out (``Org``, ``org_id``, ``orgc_id``), ``locked``, the distribution rewritten for
    the event and each element, what may not leave left out; unpublished when the server
    says ``unpublish_event``."""
    remote = remote_server(server)
    blocked = rule_terms(server["push_rules"] or {}, "tags", "NOT")
    event = dict(rendered.get("Event", rendered))
    for key in ("Org", "org_id", "orgc_id", "proposal_email_lock", "org", "orgc"):
        event.pop(key, None)
    event["locked"] = True
    if server["unpublish_event"]:
        event["published"] = False
    event["distribution"] = str(
        access.pushed_distribution(_level(event.get("distribution")), internal=remote.internal)
    )
    if "Tag" in event:
        event["Tag"] = _exportable(event["Tag"], internal=remote.internal)
    attributes = [_attribute(a, remote, groups, blocked) for a in event.get("Attribute") or []]
    event["Attribute"] = [a for a in attributes if a is not None]
    objects = []
    for obj in event.get("Object") or []:
        found = _element(obj, remote, groups)
        if found is None:
            continue
        found.pop("id", None)
        inner = [_attribute(a, remote, groups, blocked) for a in found.get("Attribute") or []]
        found["Attribute"] = [a for a in inner if a is not None]
        objects.append(found)
    event["Object"] = objects
    reports = [_element(r, remote, groups) for r in event.get("EventReport") or []]
    event["EventReport"] = [r for r in reports if r is not None]
    if not event["EventReport"]:
        event.pop("EventReport")
    return {"Event": event}


def _admin(row: Mapping[str, Any]) -> Viewer:
    """MISP's push reads the event as a site admin of its creator organisation."""
    return Viewer(
        user_id=0, user_uuid=uuid.UUID(int=0), email="", org_id=int(row["orgc_id"]),
        org_uuid=row["orgc_uuid"], org_name="", role=MispRole.admin,
    )  # fmt: skip


def _sharing_group_ids(rendered: Mapping[str, Any]) -> set[int]:
    event = rendered.get("Event", rendered)
    found = set()
    parts: list[Any] = [*(event.get("Attribute") or []), *(event.get("EventReport") or [])]
    for obj in event.get("Object") or []:
        parts += [obj, *(obj.get("Attribute") or [])]
    for part in parts:
        if isinstance(part, Mapping) and _group_of(part):
            found.add(_group_of(part))
    return found


async def _payload(uow: Handling, server: Mapping[str, Any], event_uuid: uuid.UUID) -> Any:
    """The event to send, or why it no longer goes (unpublished, deleted, rules changed)."""
    async with uow.driver() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
        rows = await exchange.push_candidates(conn, event_uuid=event_uuid)
        if not rows:
            return "no longer published here"
        row = rows[0]
        groups = await store.sharing_group_views(conn, [row["sharing_group_id"] or 0])
        host = await host_org_id(conn, uow.get(Settings))
        why = refusal(row, server, groups.get(row["sharing_group_id"] or 0), host_org_id=host)
        if why is not None:
            return why
        options = ViewOptions(
            deleted=1, sightings=bool(server["push_sightings"]),
            exclude_local_tags=not server["internal"],
        )  # fmt: skip
        rendered = await render(conn, int(row["id"]), _admin(row), options)
        if rendered is None:
            return "no longer here"
        groups |= await store.sharing_group_views(conn, _sharing_group_ids(rendered))
    return prepare_for_push(rendered, server, groups)


def _errors(response: FetchResponse) -> Any:
    try:
        body = json.loads(response.body)
    except ValueError:
        return None
    return body.get("errors") if isinstance(body, dict) else None


async def _send(
    remote: Remote, payload: bytes, event_uuid: str, *, signature: str | None
) -> FetchResponse:
    """``ServerSyncTool::pushEvent``: ``events/add``; when the remote answers that it has the
    event (404 with ``Location``), ``events/edit`` of the one it names. A protected event
    goes with this instance's signature of the JSON sent (``ServerSyncTool::post``)."""
    response = await remote.send(payload, uuid=event_uuid, edit=False, signature=signature)
    location = response.headers.get("location")
    if response.status == 404 and location:
        target = location.rstrip("/").rsplit("/", 1)[-1] or event_uuid
        response = await remote.send(payload, uuid=target, edit=True, signature=signature)
    return response


async def push_item(uow: Handling, event: PushItemRequested) -> None:
    """Step 2: one event, rewritten for the server and sent; counted as pushed, skipped
    (it no longer goes, or the remote's copy is as new: "not newer") or failed."""
    keys = uow.get(KeyBox)
    started = time.perf_counter()
    async with uow.driver() as reader:
        server = await exchange.server(reader, event.server_id)
    if server is None:
        await _count(uow, event.job_id, failed=1, error="the server was deleted")
        return
    payload = await _payload(uow, server, event.event_uuid)
    if isinstance(payload, str):
        await _count(uow, event.job_id, skipped=1)
        log.info("push_item_skipped", job_id=str(event.job_id),
                 event_uuid=str(event.event_uuid), reason=payload)  # fmt: skip
        return
    content = json.dumps(payload).encode()
    size = len(content)
    signature = None
    if payload["Event"].get("protected"):
        signature = await protection.sign_body(uow, uow.get(protection.Keyring), content)
    try:
        async with remote_for(server, keys) as remote:
            response = await _send(remote, content, str(event.event_uuid), signature=signature)
    except (FetchError, RemoteError, UnreadableKey) as exc:
        await _count(uow, event.job_id, failed=1, error=f"{event.event_uuid}: {exc}"[:2000])
        return
    if response.ok:
        await _count(uow, event.job_id, pushed=1, bytes_=size)
        outcome = "pushed"
    elif response.status == 403 and _errors(response) == NOT_NEWER:
        await _count(uow, event.job_id, skipped=1, bytes_=size)  # MISP: not an error
        outcome = "not newer"
    else:
        reason = _errors(response) or response.text[:300]
        error = f"{event.event_uuid}: HTTP {response.status}: {reason}"[:2000]
        await _count(uow, event.job_id, failed=1, bytes_=size, error=error)
        outcome = f"HTTP {response.status}"
    elapsed = round((time.perf_counter() - started) * 1000)
    log.info("push_item_done", job_id=str(event.job_id), event_uuid=str(event.event_uuid),
             outcome=outcome, bytes=size, ms=elapsed)  # fmt: skip


async def _count(uow: Handling, job_id: uuid.UUID, **counts: Any) -> None:
    async with uow:
        if not await uow.claim():
            return  # counted by another delivery of this message
        conn = await driver_in_transaction(uow.session)
        await exchange.count_job(conn, job_id, now=_now(), **counts)
        await uow.commit()
