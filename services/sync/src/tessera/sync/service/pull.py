"""Pulling from a remote server, as MISP does and faster.

A pull is a job (``GET /sync/jobs/{id}`` shows its progress). It runs as two kinds of
messages the service sends itself through its outbox, so no step is lost and any replica may
take any of them:

1. ``sync.pull.requested``: read the remote's **minimal index** (with the ETag of the last
   pull: an unchanged remote answers 304 and the pull is over), then in one query drop what
   must not come in — blocklisted events and organisations — and what is here already as
   new, **before downloading anything**; one ``sync.pull_item.requested`` per event left.
2. ``sync.pull_item.requested``: download that one event, apply MISP's rules for pulled
   events (distribution 1→0 and 2→1 unless the server is ``internal``; ``Orgc`` kept, ``Org``
   the server's organisation; locked; parts replaced only by newer ones, soft deletions
   carried), write it in one transaction with the job's progress. Consumers handle as many
   items at once as their prefetch allows (``BROKER__PREFETCH``).

An item that fails (network, an answer that is no event, data refused) is counted as failed
with its reason; pulling again retries it.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import anyio
import structlog

from tessera.common.consumers import Handling
from tessera.common.db import UnitOfWork, driver_in_transaction
from tessera.common.fetch import FetchError
from tessera.common.problems import Problem
from tessera.sync import access, directory, exchange, store
from tessera.sync.crypto import KeyBox
from tessera.sync.events import EventPublished, EventUpdated, PullItemRequested, PullRequested
from tessera.sync.remote import RemoteError
from tessera.sync.service.servers import remote_for, require_site_admin, server_for
from tessera.sync.viewer import Viewer
from tessera.sync.wire import EventIn, InvalidPayload, parse_event

__all__ = ["pull_item", "run_pull", "start_pull"]

log = structlog.stdlib.get_logger(__name__)


class PullDisabled(Problem):
    status = 403
    code = "pull_disabled"
    title = "Pull setting not enabled for this server."


def _now() -> datetime:
    return datetime.now(UTC)


async def start_pull(
    uow: UnitOfWork, server_id: int, viewer: Viewer, *, event_uuid: uuid.UUID | None = None
) -> uuid.UUID:
    """Queue a pull (of everything, or of one event): its job's id, at once."""
    require_site_admin(viewer)
    server = await server_for(uow, server_id)
    if not server["pull"]:
        raise PullDisabled()
    job_id = uuid.uuid4()
    async with uow:
        conn = await driver_in_transaction(uow.session)
        await exchange.insert_job(conn, {
            "id": job_id, "kind": "pull", "server_id": server_id, "event_uuid": event_uuid,
            "requested_by": viewer.user_uuid, "now": _now(),
        })  # fmt: skip
        uow.publish(
            PullRequested(job_id=job_id, server_id=server_id, event_uuid=event_uuid),
            subject=str(job_id),
        )
        await uow.commit()
    return job_id


def _index_filters(server: dict[str, Any]) -> dict[str, Any]:
    """MISP pulls published events only, narrowed by the server's pull rules."""
    filters: dict[str, Any] = {"published": 1}
    rules = server["pull_rules"] or {}
    for key in ("tags", "orgs"):
        rule = rules.get(key) or {}
        if rule.get("OR") or rule.get("NOT"):
            filters["tag" if key == "tags" else "org"] = rule
    return filters


async def run_pull(uow: Handling, event: PullRequested) -> None:
    """Step 1: the index, what to skip, one message per event to download."""
    keys = uow.get(KeyBox)
    async with uow:
        conn = await driver_in_transaction(uow.session)
        job = await exchange.job(conn, event.job_id)
        if job is None or job["status"] != "queued":
            return  # handled already (a redelivery)
        await exchange.set_job(conn, event.job_id, status="running", started_at=_now())
        server = await exchange.server(conn, event.server_id)
        await uow.commit()
    if server is None:
        await _finish(uow, event.job_id, error="the server was deleted")
        return
    try:
        async with remote_for(server, keys) as remote:
            entries: list[tuple[uuid.UUID, int, uuid.UUID | None]]
            if event.event_uuid is not None:
                entries = [(event.event_uuid, 2**62, None)]  # one event: always fetched
                index_bytes, etag = 0, server["index_etag"]
            else:
                index = await remote.index(
                    etag=server["index_etag"], filters=_index_filters(server)
                )
                if index.entries is None:
                    await _finish(uow, event.job_id, seen=0, skipped=0, total=0)
                    log.info("pull_unchanged", job_id=str(event.job_id), server_id=server["id"])
                    return
                entries = _entries(index.entries)
                index_bytes, etag = index.bytes, index.etag
    except (FetchError, RemoteError) as exc:
        await _finish(uow, event.job_id, error=f"index: {exc}"[:2000])
        return
    async with uow:
        conn = await driver_in_transaction(uow.session)
        wanted, skipped = await exchange.pull_candidates(conn, entries)
        await exchange.set_job(
            conn, event.job_id, seen=len(entries), skipped=skipped, total=len(wanted),
            bytes=index_bytes,
        )  # fmt: skip
        for event_uuid, timestamp in wanted:
            uow.publish(
                PullItemRequested(
                    job_id=event.job_id,
                    server_id=server["id"],
                    event_uuid=event_uuid,
                    remote_timestamp=timestamp,
                ),
                subject=str(event_uuid),
            )
        if etag != server["index_etag"]:
            await exchange.set_server_etag(conn, server["id"], etag)
        if not wanted:
            await exchange.set_job(conn, event.job_id, status="done", finished_at=_now())
        await uow.commit()
    log.info("pull_index_read", job_id=str(event.job_id), seen=len(entries), skipped=skipped,
             to_fetch=len(wanted))  # fmt: skip


def _entries(index: Sequence[Any]) -> list[tuple[uuid.UUID, int, uuid.UUID | None]]:
    found = []
    for entry in index:
        if not isinstance(entry, dict):
            continue
        row = entry.get("Event", entry)
        try:
            found.append(
                (
                    uuid.UUID(str(row["uuid"])),
                    int(row.get("timestamp") or 0),
                    uuid.UUID(str(row["orgc_uuid"])) if row.get("orgc_uuid") else None,
                )
            )
        except (KeyError, ValueError, TypeError):
            continue  # an entry we cannot read is no event to pull
    return found


async def _finish(uow: UnitOfWork, job_id: uuid.UUID, *, error: str | None = None,
                  **counts: int) -> None:  # fmt: skip
    async with uow:
        conn = await driver_in_transaction(uow.session)
        await exchange.set_job(
            conn, job_id, status="failed" if error else "done", error=error,
            finished_at=_now(), **counts,
        )  # fmt: skip
        await uow.commit()


async def pull_item(uow: Handling, event: PullItemRequested) -> None:
    """Step 2: one event, downloaded, checked, rewritten as a pulled event, written."""
    keys = uow.get(KeyBox)
    started = time.perf_counter()
    async with uow.driver() as conn:
        server = await exchange.server(conn, event.server_id)
    if server is None:
        await _count(uow, event.job_id, failed=1, error="the server was deleted")
        return
    try:
        async with remote_for(server, keys) as remote, remote.event(str(event.event_uuid)) as body:
            raw = await body.read()
        payload = await anyio.to_thread.run_sync(json.loads, raw)
        parsed = await anyio.to_thread.run_sync(lambda: parse_event(payload, drop_invalid=True))
    except (FetchError, RemoteError, ValueError, InvalidPayload) as exc:
        log.warning("pull_item_failed", job_id=str(event.job_id), event_uuid=str(event.event_uuid),
                    error=str(exc)[:300])  # fmt: skip
        await _count(uow, event.job_id, failed=1, error=f"{event.event_uuid}: {exc}"[:2000])
        return
    async with uow:
        conn = await driver_in_transaction(uow.session)
        saved = await save_pulled(conn, parsed, server)
        if saved is not None:
            _announce(uow, saved, parsed, server)
        await exchange.count_job(conn, event.job_id, fetched=1, bytes_=len(raw), now=_now())
        await uow.commit()
    elapsed_ms = round((time.perf_counter() - started) * 1000)
    log.info("pull_item_done", job_id=str(event.job_id), event_uuid=str(event.event_uuid),
             attributes=len(parsed.attributes), ms=elapsed_ms)  # fmt: skip


async def _count(uow: UnitOfWork, job_id: uuid.UUID, *, failed: int, error: str) -> None:
    async with uow:
        conn = await driver_in_transaction(uow.session)
        await exchange.count_job(conn, job_id, failed=failed, error=error, now=_now())
        await uow.commit()


async def save_pulled(conn: Any, event: EventIn, server: dict[str, Any]) -> tuple[int, bool] | None:
    """Write a pulled event with MISP's rules; ``(event id, created)``, or None when the
    local copy is as new (or the uuid is blocklisted meanwhile)."""
    now_dt = _now()
    now = int(now_dt.timestamp())
    if await conn.fetchval("SELECT 1 FROM event_blocklists WHERE event_uuid = $1", event.uuid):
        return None
    internal = server["internal"]
    event.distribution = access.pulled_distribution(event.distribution, internal=internal)
    for part in (*event.attributes, *event.objects, *event.reports,
                 *(a for o in event.objects for a in o.attributes)):  # fmt: skip
        part.distribution = access.pulled_distribution(part.distribution, internal=internal)
    event.locked = True
    orgc = event.orgc
    if orgc is None or orgc.uuid is None:
        orgc_id = server["remote_org_id"] or server["org_id"]
    else:
        orgc_id = await directory.ensure_organisation(
            conn, orgc.uuid, orgc.name or str(orgc.uuid), now_dt
        )
    sharing_groups: dict[uuid.UUID, int] = {}
    for group in _sharing_groups(event):
        sharing_groups[group.uuid] = await store.upsert_sharing_group(
            conn, group, now=now_dt, fallback_org_id=orgc_id
        )
    event_sg = sharing_groups.get(event.sharing_group.uuid) if event.sharing_group else None
    if event.distribution == 4 and event_sg is None:
        event.distribution = access.received_distribution(4, sharing_group_resolved=False)
    event_id, created, previous = await store.upsert_event_row(
        conn, event, org_id=server["org_id"], orgc_id=orgc_id, user_id=None,
        sharing_group_id=event_sg, now=now,
    )  # fmt: skip
    as_new = previous is not None and event.timestamp is not None and previous >= event.timestamp
    if not created and as_new:
        return None
    object_ids = await store.upsert_objects(
        conn, event_id, event.objects, now=now, sharing_groups=sharing_groups
    )
    object_of = {a.uuid: o.uuid for o in event.objects for a in o.attributes}
    every = [*event.attributes, *(a for o in event.objects for a in o.attributes)]
    ids = await store.upsert_attributes(
        conn, event_id, every, now=now, object_ids=object_ids, object_of=object_of,
        sharing_groups=sharing_groups,
    )  # fmt: skip
    await store.upsert_references(conn, event_id, event.objects, object_ids, now=now)
    await store.upsert_reports(conn, event_id, event.reports, now=now)
    await store.attach_tags(conn, event_id, [t for t in event.tags if not t.local])
    for attribute in every:
        if attribute.uuid in ids and attribute.tags:
            await store.attach_tags(
                conn, event_id, [t for t in attribute.tags if not t.local],
                attribute_id=ids[attribute.uuid],
            )  # fmt: skip
    await exchange.upsert_sightings(
        conn, event_id, [(a.uuid, s) for a in every for s in a.sightings], now=now_dt
    )
    await store.refresh_event(conn, event_id)
    return event_id, created


def _sharing_groups(event: EventIn) -> list[Any]:
    found = {}
    for part in (event, *event.attributes, *event.objects, *event.reports,
                 *(a for o in event.objects for a in o.attributes)):  # fmt: skip
        group = getattr(part, "sharing_group", None)
        if group is not None:
            found[group.uuid] = group
    return list(found.values())


def _announce(
    uow: UnitOfWork, saved: tuple[int, bool], event: EventIn, server: dict[str, Any]
) -> None:
    event_id, _ = saved
    facts = {
        "event_id": event_id, "event_uuid": event.uuid, "info": event.info[:2000],
        "orgc_uuid": event.orgc.uuid if event.orgc and event.orgc.uuid else server["org_uuid"],
        "org_uuid": server["org_uuid"], "distribution": min(event.distribution, 4),
        "timestamp": event.timestamp or int(time.time()),
        "attribute_count": len(event.attributes), "source": "pull",
    }  # fmt: skip
    kind = EventPublished if event.published else EventUpdated
    uow.publish(kind(**facts), subject=str(event.uuid))
