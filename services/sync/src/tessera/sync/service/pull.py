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
   carried; an event made here is never overwritten), write it in one transaction with the
   job's progress. Consumers handle as many
   items at once as their prefetch allows (``BROKER__PREFETCH``).

An item that fails (network, an answer that is no event, data refused) is counted as failed
with its reason; pulling again retries it.
"""

from __future__ import annotations

import json
import tempfile
import time
import uuid
from collections.abc import AsyncIterable, AsyncIterator, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import anyio
import ijson
import structlog

from tessera.common.consumers import Handling
from tessera.common.db import UnitOfWork, driver_in_transaction
from tessera.common.fetch import FetchError
from tessera.common.problems import Problem
from tessera.sync import access, directory, exchange, signing, store
from tessera.sync.crypto import KeyBox, UnreadableKey
from tessera.sync.events import EventPublished, EventUpdated, PullItemRequested, PullRequested
from tessera.sync.remote import RemoteError
from tessera.sync.service import protection
from tessera.sync.service.push_jobs import push_published, remote_server
from tessera.sync.service.servers import remote_for, require_site_admin, server_for
from tessera.sync.settings import Settings
from tessera.sync.viewer import Viewer
from tessera.sync.wire import AttributeIn, EventIn, InvalidPayload, ObjectIn, parse_event
from tessera.sync.wire.stream import batches, read_head

__all__ = [
    "MADE_HERE",
    "Download",
    "MadeHere",
    "PullDisabled",
    "PulledWriter",
    "Received",
    "count_item",
    "finish_job",
    "ingest",
    "keeps_distribution",
    "pull_item",
    "queue_pull",
    "run_pull",
    "start_pull",
]

log = structlog.stdlib.get_logger(__name__)


MADE_HERE = (
    "Blocked an edit to an event that was created locally. This can happen if a synchronised "
    "event that was created on this instance was modified by an administrator on the remote "
    "side."
)


class MadeHere(Exception):
    """A pulled event exists here unlocked (made here, not by sync): MISP's pull fails the
    item rather than overwrite it (``Server::__checkIfPulledEventExistsAndAddOrUpdate``),
    unless the server is ``internal``."""

    def __init__(self) -> None:
        super().__init__(MADE_HERE)


class PullDisabled(Problem):
    status = 403
    code = "pull_disabled"
    title = "Pull setting not enabled for this server."


def _now() -> datetime:
    return datetime.now(UTC)


async def start_pull(
    uow: UnitOfWork, server_id: int, viewer: Viewer, *, event_uuid: uuid.UUID | None = None
) -> uuid.UUID:
    """Queue a pull (of everything, or of one event) for a site admin: its job's id, at once."""
    require_site_admin(viewer)
    return await queue_pull(uow, server_id, event_uuid=event_uuid, requested_by=viewer.user_uuid)


async def queue_pull(
    uow: UnitOfWork,
    server_id: int,
    *,
    event_uuid: uuid.UUID | None = None,
    requested_by: uuid.UUID | None,
) -> uuid.UUID:
    """The pull's job and its ``sync.pull.requested``, in one transaction; the caller has
    checked who may (:func:`start_pull` for a user; ``tessera-sync pull`` is an operator with
    the service's database, ``requested_by`` None). A running service's relay sends it on."""
    server = await server_for(uow, server_id)
    if not server["pull"]:
        raise PullDisabled()
    job_id = uuid.uuid4()
    async with uow:
        conn = await driver_in_transaction(uow.session)
        await exchange.insert_job(conn, {
            "id": job_id, "kind": "pull", "server_id": server_id, "event_uuid": event_uuid,
            "requested_by": requested_by, "now": _now(),
        })  # fmt: skip
        uow.publish(
            PullRequested(job_id=job_id, server_id=server_id, event_uuid=event_uuid),
            subject=str(job_id),
        )
        await uow.commit()
    return job_id


def _index_filters(server: dict[str, Any]) -> dict[str, Any]:
    """MISP pulls published events only, narrowed by the server's pull rules, sent as MISP's
    ``Server::filterRuleToParameter`` writes them: ``{"tags": {"OR": [a], "NOT": [b]}}``
    becomes ``tag: ["a", "!b"]`` (and ``orgs`` becomes ``org``)."""
    filters: dict[str, Any] = {"published": 1}
    rules = server["pull_rules"] or {}
    for key, parameter in (("tags", "tag"), ("orgs", "org")):
        rule = rules.get(key) or {}
        terms = [str(t) for t in rule.get("OR") or [] if str(t)]
        terms += [f"!{t}" for t in rule.get("NOT") or [] if str(t)]
        if terms:
            filters[parameter] = terms
    return filters


async def run_pull(uow: Handling, event: PullRequested) -> None:
    """Step 1: the index, what to skip, one message per event to download."""
    keys = uow.get(KeyBox)
    async with uow:
        conn = await driver_in_transaction(uow.session)
        if not await exchange.begin_job(conn, event.job_id, now=_now()):
            return  # handled already (a redelivery)
        server = await exchange.server(conn, event.server_id)
        await uow.commit()
    if server is None:
        await finish_job(uow, event.job_id, error="the server was deleted")
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
                    await finish_job(uow, event.job_id, seen=0, skipped=0, total=0)
                    log.info("pull_unchanged", job_id=str(event.job_id), server_id=server["id"])
                    return
                entries = _entries(index.entries)
                index_bytes, etag = index.bytes, index.etag
    except (FetchError, RemoteError, UnreadableKey) as exc:
        await finish_job(uow, event.job_id, error=f"index: {exc}"[:2000])
        return
    async with uow:
        if not await uow.claim():
            return
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


async def finish_job(uow: Handling, job_id: uuid.UUID, *, error: str | None = None,
                  **counts: int) -> None:  # fmt: skip
    async with uow:
        if not await uow.claim():
            return  # another delivery of this message settled the job
        conn = await driver_in_transaction(uow.session)
        await exchange.set_job(
            conn, job_id, status="failed" if error else "done", error=error,
            finished_at=_now(), **counts,
        )  # fmt: skip
        await uow.commit()


async def pull_item(uow: Handling, event: PullItemRequested) -> None:
    """Step 2: one event, downloaded from the server and written as a pulled event."""
    keys = uow.get(KeyBox)
    settings = uow.get(Settings)
    async with uow.driver() as reader:
        server = await exchange.server(reader, event.server_id)
    if server is None:
        await count_item(uow, event.job_id, failed=1, error="the server was deleted")
        return

    received = Received()

    @asynccontextmanager
    async def download() -> AsyncIterator[AsyncIterable[bytes]]:
        async with remote_for(server, keys) as remote, remote.event(str(event.event_uuid)) as body:
            received.signature = body.headers.get(signing.SIGNATURE_HEADER)
            yield body

    writer = PulledWriter(None, server, keep_distribution=keeps_distribution(server, settings))
    await ingest(uow, job_id=event.job_id, event_uuid=event.event_uuid, download=download,
                 writer=writer, source="pull", received=received)  # fmt: skip


@dataclass
class Received:
    """What came with a server's ``events/view`` besides its body: a protected event's
    ``x-pgp-signature``."""

    signature: str | None = None


Download = Callable[[], AbstractAsyncContextManager[AsyncIterable[bytes]]]
"""opens one event's body as a stream of bytes (a server's ``events/view``, a feed's
``<uuid>.json``); raises FetchError, RemoteError or UnreadableKey"""


async def ingest(
    uow: Handling,
    *,
    job_id: uuid.UUID,
    event_uuid: uuid.UUID,
    download: Download,
    writer: PulledWriter,
    source: str,
    received: Received | None = None,
) -> bool:
    """One event of a job, downloaded (spooled to disk past ``SYNC__STREAM_EVENTS_OVER_BYTES``),
    checked, rewritten by ``writer``'s rules, written (a large one a batch at a time) and
    counted in the job; False when it failed (counted as failed, with its reason: an event
    made here that a pull may not overwrite, :class:`MadeHere`, is one). A blocklisted event,
    or one whose creator is blocklisted, is counted as skipped. With ``received`` (a server's
    answer, not a feed's), a protected event whose signature does not verify
    (:func:`protection.check`) is counted as failed and nothing of it is written."""
    settings = uow.get(Settings)
    started = time.perf_counter()
    spool = tempfile.SpooledTemporaryFile(max_size=settings.stream_events_over_bytes)  # noqa: SIM115
    try:
        size = 0
        async with download() as body:
            async for chunk in body:
                size += len(chunk)
                spool.write(chunk)  # memory, or the page cache once rolled over to disk
        downloaded = time.perf_counter()
        large = size > settings.stream_events_over_bytes
        if large:
            head_payload = await anyio.to_thread.run_sync(read_head, spool)
            writer.received(head_payload)
            head = await anyio.to_thread.run_sync(
                lambda: parse_event(head_payload, drop_invalid=True)
            )
        else:
            spool.seek(0)
            payload = await anyio.to_thread.run_sync(json.loads, spool.read())
            if not isinstance(payload, dict):
                raise ValueError("the answer is not an event")
            writer.received(payload)
            head = await anyio.to_thread.run_sync(lambda: parse_event(payload, drop_invalid=True))
        if received is not None:
            await _check_signature(uow, spool, head, received.signature)
    except (FetchError, RemoteError, UnreadableKey, ValueError, InvalidPayload,
            ijson.JSONError, signing.BadSignature) as exc:  # fmt: skip
        spool.close()
        log.warning(f"{source}_item_failed", job_id=str(job_id), event_uuid=str(event_uuid),
                    error=str(exc)[:300])  # fmt: skip
        await count_item(uow, job_id, failed=1, error=f"{event_uuid}: {exc}"[:2000])
        return False
    parsed = time.perf_counter()
    written = 0
    try:
        if await _refused(uow, head):
            # asked for by uuid, so the index's organisation filter never saw it
            async with uow:
                if await uow.claim():
                    conn = await driver_in_transaction(uow.session)
                    await exchange.count_job(conn, job_id, skipped=1, bytes_=size, now=_now())
                    await uow.commit()
            log.info(f"{source}_item_blocklisted", job_id=str(job_id),
                     event_uuid=str(event_uuid))  # fmt: skip
            return True
        async with uow:
            await writer.settle_parties(await driver_in_transaction(uow.session), head)
            await uow.commit()
        async with uow:
            if not await uow.claim():
                return True  # written and counted by another delivery of this message
            writer.conn = await driver_in_transaction(uow.session)
            if await writer.start(head):
                if large:
                    written = await _write_batches(writer, spool, head, settings.pull_batch_size)
                else:
                    written = await writer.write(head.attributes, head.objects)
                await writer.finish(head)
                await protection.keep_keys(writer.conn, writer.event_id, head)
                _announce(uow, writer, head, source)
                if head.published:  # MISP's _add/_edit publish it: pushed on, not back
                    await push_published(uow, writer.conn, writer.event_id, requested_by=None)
            await exchange.count_job(writer.conn, job_id, fetched=1, bytes_=size, now=_now())
            await uow.commit()
    except MadeHere as refused:  # rolled back: nothing of it written
        log.warning(f"{source}_item_refused", job_id=str(job_id), event_uuid=str(event_uuid),
                    error=str(refused))  # fmt: skip
        await count_item(uow, job_id, failed=1, error=f"{event_uuid}: {refused}"[:2000])
        return False
    finally:
        spool.close()
    done = time.perf_counter()
    log.info(f"{source}_item_done", job_id=str(job_id), event_uuid=str(event_uuid),
             attributes=written, bytes=size, streamed=large, ms=_ms(done - started),
             download_ms=_ms(downloaded - started), parse_ms=_ms(parsed - downloaded),
             write_ms=_ms(done - parsed))  # fmt: skip
    return True


async def _check_signature(uow: Handling, spool: Any, head: EventIn, signature: str | None) -> None:
    """``Server::__checkIfPulledEventExistsAndAddOrUpdate``: a protected event (here or in
    what came) must be signed by a key the local copy trusts, or, new here, one it lists."""
    async with uow.driver() as reader:
        trusted = await protection.trusted_for(reader, head)
    if trusted is None:
        return

    def whole() -> bytes:
        spool.seek(0)
        body = spool.read()
        spool.seek(0)
        return bytes(body)

    try:
        await protection.verify(await anyio.to_thread.run_sync(whole), signature, trusted)
    except signing.BadSignature as bad:
        raise signing.BadSignature(f"{protection.PULL_FAILED} ({bad})") from None


def keeps_distribution(server: dict[str, Any], settings: Settings) -> bool:
    """:meth:`access.RemoteServer.keeps_distribution_on_pull` for this server row, whose own
    organisation's uuid says whether it is the host organisation (no query per item)."""
    host = server["org_id"] if server["org_uuid"] == settings.host_org_uuid else None
    return remote_server(server).keeps_distribution_on_pull(host_org_id=host)


async def _refused(uow: Handling, head: EventIn) -> bool:
    """The downloaded event is blocklisted, or so is its creator organisation."""
    async with uow.driver() as reader:
        if await store.blocked_event(reader, head.uuid):
            return True
        return (
            head.orgc is not None
            and head.orgc.uuid is not None
            and (await store.blocked_org(reader, head.orgc.uuid))
        )


def _ms(seconds: float) -> int:
    return round(seconds * 1000)


async def _write_batches(writer: PulledWriter, spool: Any, head: EventIn, size: int) -> int:
    """The event's objects, then its attributes, read from the spool ``size`` at a time."""
    written = 0
    for name in ("Object", "Attribute"):
        pages = batches(spool, name, size)
        while True:
            page = await anyio.to_thread.run_sync(next, pages, None)
            if page is None:
                break
            payload = {"uuid": str(head.uuid), "info": head.info or "-", name: page}
            parsed = await anyio.to_thread.run_sync(_parse_part, payload)
            written += await writer.write(parsed.attributes, parsed.objects)
    return written


def _parse_part(payload: dict[str, Any]) -> EventIn:
    """A batch of a large event's attributes or objects, checked as MISP checks them
    (invalid ones are left out, as MISP's import leaves them)."""
    return parse_event(payload, drop_invalid=True)


async def count_item(uow: Handling, job_id: uuid.UUID, *, failed: int, error: str) -> None:
    async with uow:
        if not await uow.claim():
            return  # counted by another delivery of this message
        conn = await driver_in_transaction(uow.session)
        await exchange.count_job(conn, job_id, failed=failed, error=error, now=_now())
        await uow.commit()


class PulledWriter:
    """Writes one pulled event with MISP's rules, its parts given all at once or in batches:
    :meth:`start` (the event's own row; False when the local copy is as new or the uuid is
    blocklisted; :class:`MadeHere` for an event made here), :meth:`write` as often as needed,
    :meth:`finish` (tags, counts).

    ``server`` is where the event comes from: its ``org_id`` holds it, its ``remote_org_id``
    (else ``org_id``) created it when it names no creator. A feed's writer
    (``service/feeds.py``) changes :meth:`_rewrite`, :meth:`_event_group`, :attr:`locked` and
    :meth:`received` to apply the feed's rules instead."""

    locked = True
    """MISP locks what a pull brings in (only sync may change it); a feed's events are not"""
    spares_events_made_here = True
    """an event here that no sync brought (unlocked) is not overwritten (:class:`MadeHere`);
    a feed's writer keeps its own rules"""

    def __init__(self, conn: Any, server: dict[str, Any], *, keep_distribution: bool) -> None:
        self.conn = conn
        self.server = server
        self.keep_distribution = keep_distribution
        self.now_dt = _now()
        self.now = int(self.now_dt.timestamp())
        self.event_id = 0
        self.created = False
        self.attributes = 0
        self.attribute_count = 0  # live attributes once finished, as MISP counts them
        self._groups: dict[uuid.UUID, int] = {}
        self._seen: set[tuple[str, str, str, str]] = set()
        self._orgc_id = 0

    def received(self, raw: Mapping[str, Any]) -> None:
        """The event as it came (its head), before it is read: what a writer needs to know
        of it that reading loses (whether it named a distribution at all)."""

    def _event_group(self, event: EventIn) -> int | None:
        """The local id of the sharing group the event is shared with (by the uuid of the
        group it came with)."""
        return self._groups.get(event.sharing_group.uuid) if event.sharing_group else None

    def _rewrite(self, part: Any) -> None:
        part.distribution = access.pulled_distribution(
            part.distribution, internal=self.keep_distribution
        )
        if part.sharing_group is None:
            # a sharing group is known here only by the SharingGroup the event carries: the
            # remote's numeric id names another group here, or none, so it is dropped and a
            # distribution to a sharing group falls back as MISP's does
            part.sharing_group_id = None
            part.distribution = access.received_distribution(
                part.distribution, sharing_group_resolved=False
            )

    async def _group(self, part: Any) -> None:
        group = getattr(part, "sharing_group", None)
        if group is not None and group.uuid not in self._groups:
            self._groups[group.uuid] = await store.upsert_sharing_group(
                self.conn, group, now=self.now_dt, fallback_org_id=self._orgc_id
            )

    async def settle_parties(self, conn: Any, event: EventIn) -> None:
        """The organisations and sharing groups ``event`` names, written (on ``conn``, in a
        transaction of their own, committed) before the event's: rows every event of a server
        shares, which an upsert in the event's long transaction would keep locked while each
        other event naming them waited (measured: most of a 32-event batch queued on one
        creator organisation). Sorted by uuid, so two of these never deadlock."""
        orgs = {}
        for org in _organisations(event):
            orgs[org.uuid] = org
        for org_uuid in sorted(orgs):
            org = orgs[org_uuid]
            await directory.ensure_organisation(
                conn, org_uuid, org.name or str(org_uuid), self.now_dt
            )
        self._orgc_id = await self._creator(conn, event)
        for group in sorted(_sharing_groups(event), key=lambda g: g.uuid):
            self._groups[group.uuid] = await store.upsert_sharing_group(
                conn, group, now=self.now_dt, fallback_org_id=self._orgc_id
            )

    async def _creator(self, conn: Any, event: EventIn) -> int:
        orgc = event.orgc
        if orgc is None or orgc.uuid is None:
            return int(self.server["remote_org_id"] or self.server["org_id"])
        return await directory.ensure_organisation(
            conn, orgc.uuid, orgc.name or str(orgc.uuid), self.now_dt
        )

    async def start(self, event: EventIn) -> bool:
        conn, server = self.conn, self.server
        if await conn.fetchval("SELECT 1 FROM event_blocklists WHERE event_uuid = $1", event.uuid):
            return False
        if self.spares_events_made_here and not server["internal"]:
            locked = await conn.fetchval("SELECT locked FROM events WHERE uuid = $1", event.uuid)
            if locked is False:
                raise MadeHere()
        self._rewrite(event)
        event.locked = self.locked
        if not self._orgc_id:
            self._orgc_id = await self._creator(conn, event)
        await self._group(event)
        event_sg = self._event_group(event)
        if event.distribution == 4 and event_sg is None:
            event.distribution = access.received_distribution(4, sharing_group_resolved=False)
        self.event_id, self.created, previous = await store.upsert_event_row(
            conn, event, org_id=server["org_id"], orgc_id=self._orgc_id, user_id=None,
            sharing_group_id=event_sg, now=self.now,
        )  # fmt: skip
        as_new = (
            previous is not None and event.timestamp is not None and previous >= event.timestamp
        )
        written = self.created or not as_new
        if written and self.source_server_id is not None:
            # MISP's pass-along: a push never sends it back to this server
            await exchange.set_source_server(conn, self.event_id, self.source_server_id)
        return written

    @property
    def source_server_id(self) -> int | None:
        """The server the event comes from (none for a feed's)."""
        return int(self.server["id"])

    def _fresh(self, attributes: list[AttributeIn]) -> list[AttributeIn]:
        """MISP's duplicate rule across batches: one type, category and value per event."""
        kept = []
        for attribute in attributes:
            key = (attribute.type, attribute.category, attribute.value1, attribute.value2)
            if key not in self._seen:
                self._seen.add(key)
                kept.append(attribute)
        return kept

    async def write(self, attributes: list[AttributeIn], objects: list[ObjectIn]) -> int:
        conn, event_id = self.conn, self.event_id
        for part in (*attributes, *objects, *(a for o in objects for a in o.attributes)):
            self._rewrite(part)
            await self._group(part)
        object_ids = await store.upsert_objects(
            conn, event_id, objects, now=self.now, sharing_groups=self._groups
        )
        object_of = {a.uuid: o.uuid for o in objects for a in o.attributes}
        every = [*self._fresh(attributes), *(a for o in objects for a in o.attributes)]
        ids = await store.upsert_attributes(
            conn, event_id, every, now=self.now, object_ids=object_ids, object_of=object_of,
            sharing_groups=self._groups,
        )  # fmt: skip
        await store.upsert_references(conn, event_id, objects, object_ids, now=self.now)
        await store.attach_attribute_tags(
            conn,
            event_id,
            [(ids[a.uuid], t) for a in every if a.uuid in ids for t in a.tags if not t.local],
        )
        await exchange.upsert_sightings(
            conn, event_id, [(a.uuid, s) for a in every for s in a.sightings], now=self.now_dt
        )
        self.attributes += len(every)
        return len(every)

    async def finish(self, event: EventIn) -> None:
        for report in event.reports:
            self._rewrite(report)
        await store.upsert_reports(self.conn, self.event_id, event.reports, now=self.now)
        await store.attach_tags(self.conn, self.event_id, [t for t in event.tags if not t.local])
        self.attribute_count = await store.refresh_event(self.conn, self.event_id)


def _sharing_groups(event: EventIn) -> list[Any]:
    found = {}
    for part in (event, *_parts(event)):
        group = getattr(part, "sharing_group", None)
        if group is not None:
            found[group.uuid] = group
    return list(found.values())


def _parts(event: EventIn) -> list[Any]:
    return [*event.attributes, *event.objects, *event.reports,
            *(a for o in event.objects for a in o.attributes)]  # fmt: skip


def _organisations(event: EventIn) -> list[Any]:
    """Every organisation ``event`` names with a uuid: its creator, its sharing groups'
    owners and members, its attributes' sightings'."""
    found = [event.orgc]
    for group in _sharing_groups(event):
        found.append(group.organisation)
        found.extend(member.organisation for member in group.orgs)
    for part in _parts(event):
        found.extend(sighting.org for sighting in getattr(part, "sightings", ()))
    return [org for org in found if org is not None and org.uuid is not None]


def _announce(uow: UnitOfWork, writer: PulledWriter, event: EventIn, source: str) -> None:
    server = writer.server
    facts = {
        "event_id": writer.event_id, "event_uuid": event.uuid, "info": event.info[:2000],
        "orgc_uuid": event.orgc.uuid if event.orgc and event.orgc.uuid else server["org_uuid"],
        "org_uuid": server["org_uuid"], "distribution": min(event.distribution, 4),
        "timestamp": event.timestamp or int(time.time()),
        "attribute_count": writer.attribute_count, "source": source,
    }  # fmt: skip
    kind = EventPublished if event.published else EventUpdated
    uow.publish(kind(**facts), subject=str(event.uuid))
