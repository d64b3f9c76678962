"""MISP feeds: added and listed by site admins, fetched as jobs (on demand or on a schedule),
and this instance's own published events exported as a feed.

A fetch runs as a pull does (``service/pull.py``), as two kinds of messages sync sends itself
through its outbox:

1. ``sync.feed_fetch.requested``: ``manifest.json`` with the ETag of the last fetch (304: the
   job is done), the feed's rules applied to its entries (MISP's ``checkEventAgainstRules``),
   then in one query what is blocklisted or here already as new (the manifest's
   ``timestamp``) is skipped; one ``sync.feed_item.requested`` per event left.
2. ``sync.feed_item.requested``: ``<uuid>.json`` downloaded and written by the pull's
   :func:`~tessera.sync.service.pull.ingest` with a :class:`FeedWriter`: MISP's
   ``Feed::__prepareEvent`` (the feed's distribution and sharing group on the event, its
   parts inheriting; the feed's tag added), ``Event::_add`` as the fetching site admin
   (``Org`` the feed's organisation, ``Orgc`` kept, not locked).

Only ``source_format`` ``misp`` over the network (http(s), through the SSRF-safe client).
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import AsyncIterable, AsyncIterator, Mapping
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import anyio
import structlog

from tessera.common.consumers import Handling
from tessera.common.db import UnitOfWork, driver_in_transaction
from tessera.common.fetch import FetchError
from tessera.common.problems import Problem
from tessera.sync import access, exchange, store
from tessera.sync.crypto import KeyBox, UnreadableKey
from tessera.sync.events import FeedFetchRequested, FeedItemRequested
from tessera.sync.remote import RemoteError
from tessera.sync.remote_feed import RemoteFeed, parse_headers
from tessera.sync.service.pull import PulledWriter, count_item, finish_job, ingest
from tessera.sync.service.servers import called, require_site_admin
from tessera.sync.store import feeds as feed_rows
from tessera.sync.viewer import MispRole, Viewer
from tessera.sync.wire import EventIn, TagIn, render_feed_event
from tessera.sync.wire.parts import blank

__all__ = [
    "ExportedEventNotFound",
    "FeedDisabled",
    "FeedNotFound",
    "FeedWriter",
    "InvalidFeed",
    "add_feed",
    "etag_of",
    "exported_event",
    "exported_hashes",
    "exported_manifest",
    "feed_called",
    "feed_item",
    "list_feeds",
    "passes_rules",
    "queue_fetch",
    "run_fetch",
    "start_due_fetches",
    "start_fetch",
    "view_feed",
]

log = structlog.stdlib.get_logger(__name__)


class FeedNotFound(Problem):
    status = 404
    code = "feed_not_found"
    title = "Invalid feed."


class ExportedEventNotFound(Problem):
    status = 404
    code = "event_not_found"
    title = "Not Found"


class FeedDisabled(Problem):
    status = 403
    code = "feed_disabled"
    title = "Feed is currently not enabled. Make sure you enable it."


class InvalidFeed(Problem):
    status = 403
    code = "invalid_feed"
    title = "The feed could not be saved."


def _now() -> datetime:
    return datetime.now(UTC)


# --- the feeds ----------------------------------------------------------------------------------


async def add_feed(
    uow: UnitOfWork, body: dict[str, Any], viewer: Viewer, keys: KeyBox
) -> dict[str, Any]:
    """MISP's ``feeds/add`` (``body`` as the route read it): held by the caller's
    organisation; its tag and sharing group must exist here; its headers sealed."""
    require_site_admin(viewer)
    async with uow:
        conn = await driver_in_transaction(uow.session)
        await _check_references(conn, body)
        headers = body["headers"]
        row = body | {
            "headers": keys.seal(headers) if headers else None,
            "org_id": viewer.org_id,
            "now": _now(),
        }
        feed_id = await feed_rows.insert_feed(conn, row)
        await uow.commit()
    return await view_feed(uow, feed_id, viewer)


async def _check_references(conn: Any, body: Mapping[str, Any]) -> None:
    """The feed's tag and sharing group, when it names them, exist here."""
    if body.get("tag_id") is not None and not await conn.fetchval(
        "SELECT 1 FROM tags WHERE id = $1", body["tag_id"]
    ):
        raise InvalidFeed(errors=[_error("tag_id", "no such tag")])
    if body.get("sharing_group_id") is not None and not await conn.fetchval(
        "SELECT 1 FROM sharing_groups WHERE id = $1", body["sharing_group_id"]
    ):
        raise InvalidFeed(errors=[_error("sharing_group_id", "no such sharing group")])


async def edit_feed(
    uow: UnitOfWork, feed_id: int, body: dict[str, Any], viewer: Viewer, keys: KeyBox
) -> dict[str, Any]:
    """MISP's ``feeds/edit`` (``body``: the feed as the route read it, without ``headers``
    unless new ones were sent, sealed here). A new URL forgets the manifest's ETag."""
    require_site_admin(viewer)
    async with uow:
        conn = await driver_in_transaction(uow.session)
        found = await feed_rows.feed(conn, feed_id)
        if found is None:
            raise FeedNotFound()
        await _check_references(conn, body)
        columns = dict(body)
        if "headers" in columns:
            columns["headers"] = keys.seal(columns["headers"]) if columns["headers"] else None
        if columns.get("url", found["url"]) != found["url"]:
            columns["manifest_etag"] = None
        await feed_rows.update_feed(conn, feed_id, columns)
        await uow.commit()
    return await view_feed(uow, feed_id, viewer)


async def delete_feed(uow: UnitOfWork, feed_id: int, viewer: Viewer) -> None:
    """MISP's ``feeds/delete``: the feed goes; its jobs stay in the history (without it), the
    events it brought stay, a queued item of it is counted as failed."""
    require_site_admin(viewer)
    async with uow:
        conn = await driver_in_transaction(uow.session)
        if not await feed_rows.delete_feed(conn, feed_id):
            raise FeedNotFound()
        await uow.commit()


async def start_all_fetches(uow: UnitOfWork, viewer: Viewer) -> list[tuple[int, uuid.UUID]]:
    """MISP's ``feeds/fetchFromAllFeeds``: a fetch job for every enabled feed (its id and
    the job's)."""
    require_site_admin(viewer)
    now = _now()
    jobs = []
    async with uow:
        conn = await driver_in_transaction(uow.session)
        for feed_id in await feed_rows.enabled_feed_ids(conn):
            await feed_rows.set_fetched(conn, feed_id, now)
            job_id = await _queue(uow, conn, feed_id, requested_by=viewer.user_uuid, now=now)
            jobs.append((feed_id, job_id))
        await uow.commit()
    return jobs


def _error(field: str, message: str) -> dict[str, Any]:
    return {"field": field, "in": "body", "type": "value_error", "message": message}


async def list_feeds(uow: UnitOfWork, viewer: Viewer, *, limit: int, offset: int) -> list[Any]:
    require_site_admin(viewer)
    async with uow.driver() as conn:
        return await feed_rows.feeds_page(conn, limit=limit, offset=offset)


async def view_feed(uow: UnitOfWork, feed_id: int, viewer: Viewer) -> dict[str, Any]:
    require_site_admin(viewer)
    async with uow.driver() as conn:
        found = await feed_rows.feed(conn, feed_id)
    if found is None:
        raise FeedNotFound()
    return found


def remote_feed_for(feed: Mapping[str, Any], keys: KeyBox) -> RemoteFeed:
    """A client for the feed, its headers opened, its address policy the feed entry's."""
    headers = parse_headers(keys.open(feed["headers"])) if feed["headers"] else {}
    return RemoteFeed(feed["url"], headers=headers, allow_private=feed["allow_private_addresses"])


# --- fetching -----------------------------------------------------------------------------------


async def feed_called(uow: UnitOfWork, ref: str) -> dict[str, Any]:
    """The feed ``ref`` names (its id or its name)."""
    return await called(
        uow, ref, row=feed_rows.feed, ids_named=feed_rows.feed_ids_named,
        missing=FeedNotFound, noun="feed",
    )  # fmt: skip


async def start_fetch(uow: UnitOfWork, feed_id: int, viewer: Viewer) -> uuid.UUID:
    """Queue a fetch of the feed (MISP's ``feeds/fetchFromFeed``) for a site admin: its
    job's id, at once."""
    require_site_admin(viewer)
    return await queue_fetch(uow, feed_id, requested_by=viewer.user_uuid)


async def queue_fetch(
    uow: UnitOfWork, feed_id: int, *, requested_by: uuid.UUID | None
) -> uuid.UUID:
    """A fetch of the feed: its job and ``sync.feed_fetch.requested`` in one transaction; the
    caller has checked who may (:func:`start_fetch` for a user; ``tessera-sync fetch-feed``
    is an operator, ``requested_by`` None). 404 for an unknown feed, 403 ``feed_disabled``
    for a disabled one. The schedule counts from here."""
    async with uow.driver() as conn:
        feed = await feed_rows.feed(conn, feed_id)
    if feed is None:
        raise FeedNotFound()
    if not feed["enabled"]:
        raise FeedDisabled()
    async with uow:
        conn = await driver_in_transaction(uow.session)
        now = _now()
        await feed_rows.set_fetched(conn, feed_id, now)
        job_id = await _queue(uow, conn, feed_id, requested_by=requested_by, now=now)
        await uow.commit()
    return job_id


async def _queue(
    uow: UnitOfWork, conn: Any, feed_id: int, *, requested_by: uuid.UUID | None, now: datetime
) -> uuid.UUID:
    """A fetch job and its first message, in the caller's transaction."""
    job_id = uuid.uuid4()
    await exchange.insert_job(conn, {
        "id": job_id, "kind": "feed", "feed_id": feed_id, "requested_by": requested_by,
        "now": now,
    })  # fmt: skip
    uow.publish(FeedFetchRequested(job_id=job_id, feed_id=feed_id), subject=str(job_id))
    return job_id


async def start_due_fetches(uow: UnitOfWork, *, now: datetime | None = None) -> list[uuid.UUID]:
    """The schedule: a fetch job for every enabled feed whose ``fetch_every_s`` has passed
    since its last fetch. Safe to run on every replica at once (the feeds are claimed in one
    statement); the jobs are as a user's, without ``requested_by``."""
    moment = now or _now()
    jobs = []
    async with uow:
        conn = await driver_in_transaction(uow.session)
        for feed_id in await feed_rows.claim_due(conn, moment):
            jobs.append(await _queue(uow, conn, feed_id, requested_by=None, now=moment))
        await uow.commit()
    if jobs:
        log.info("feeds_due", jobs=[str(j) for j in jobs])
    return jobs


def _names(rule: Any) -> set[str]:
    return {str(v) for v in (rule or []) if str(v)}


def passes_rules(entry: Mapping[str, Any], rules: Mapping[str, Any]) -> bool:
    """MISP's ``Feed::checkEventAgainstRules`` on a manifest entry: ``tags`` ``OR`` (one of
    them) and ``NOT`` (none of them) by exact name, ``orgs`` ``OR``/``NOT`` by the creator's
    uuid or name. ``url_params`` are not applied."""
    tags = {str(t.get("name")) for t in entry.get("Tag") or [] if isinstance(t, Mapping)}
    orgc: Mapping[str, Any] = entry.get("Orgc") or {}
    if not isinstance(orgc, Mapping):
        orgc = {}
    org = {str(orgc.get("uuid") or ""), str(orgc.get("name") or "")} - {""}
    tag_rules: Mapping[str, Any] = rules.get("tags") or {}
    org_rules: Mapping[str, Any] = rules.get("orgs") or {}
    if not isinstance(tag_rules, Mapping) or not isinstance(org_rules, Mapping):
        return True  # rules we cannot read keep nothing out
    if (wanted := _names(tag_rules.get("OR"))) and not wanted & tags:
        return False
    if _names(tag_rules.get("NOT")) & tags:
        return False
    if (wanted := _names(org_rules.get("OR"))) and not wanted & org:
        return False
    return not _names(org_rules.get("NOT")) & org


def _entries(
    manifest: Mapping[str, Any], rules: Mapping[str, Any]
) -> tuple[list[tuple[uuid.UUID, int, uuid.UUID | None]], int]:
    """The manifest's events the rules let through, as ``(uuid, timestamp, orgc uuid)``, and
    how many they kept out; entries that cannot be read are no events to fetch."""
    found, excluded = [], 0
    for key, entry in manifest.items():
        if not isinstance(entry, Mapping):
            continue
        try:
            event_uuid = uuid.UUID(str(key))
            timestamp = int(entry.get("timestamp") or 0)
            orgc = entry.get("Orgc") or {}
            orgc_uuid = uuid.UUID(str(orgc["uuid"])) if orgc.get("uuid") else None
        except (KeyError, ValueError, TypeError, AttributeError):
            continue
        if not passes_rules(entry, rules):
            excluded += 1
            continue
        found.append((event_uuid, timestamp, orgc_uuid))
    return found, excluded


async def run_fetch(uow: Handling, event: FeedFetchRequested) -> None:
    """Step 1: the manifest, what to skip, one message per event to download."""
    keys = uow.get(KeyBox)
    async with uow:
        conn = await driver_in_transaction(uow.session)
        if not await exchange.begin_job(conn, event.job_id, now=_now()):
            return  # handled already (a redelivery)
        feed = await feed_rows.feed(conn, event.feed_id)
        await uow.commit()
    if feed is None:
        await finish_job(uow, event.job_id, error="the feed was deleted")
        return
    try:
        async with remote_feed_for(feed, keys) as remote:
            manifest = await remote.manifest(etag=feed["manifest_etag"])
    except (FetchError, RemoteError, UnreadableKey, ValueError) as exc:
        await finish_job(uow, event.job_id, error=f"manifest: {exc}"[:2000])
        return
    if manifest.entries is None:
        await finish_job(uow, event.job_id, seen=0, skipped=0, total=0)
        log.info("feed_unchanged", job_id=str(event.job_id), feed_id=feed["id"])
        return
    entries, excluded = _entries(manifest.entries, feed["rules"])
    async with uow:
        if not await uow.claim():
            return
        conn = await driver_in_transaction(uow.session)
        wanted, skipped = await exchange.pull_candidates(conn, entries)
        await exchange.set_job(
            conn, event.job_id, seen=len(entries) + excluded, skipped=skipped + excluded,
            total=len(wanted), bytes=manifest.bytes,
        )  # fmt: skip
        for event_uuid, timestamp in wanted:
            uow.publish(
                FeedItemRequested(job_id=event.job_id, feed_id=feed["id"],
                                  event_uuid=event_uuid, feed_timestamp=timestamp),
                subject=str(event_uuid),
            )  # fmt: skip
        if manifest.etag != feed["manifest_etag"]:
            await feed_rows.set_manifest_etag(conn, feed["id"], manifest.etag)
        if not wanted:
            await exchange.set_job(conn, event.job_id, status="done", finished_at=_now())
        await uow.commit()
    log.info("feed_manifest_read", job_id=str(event.job_id), seen=len(entries) + excluded,
             skipped=skipped + excluded, to_fetch=len(wanted))  # fmt: skip


async def feed_item(uow: Handling, event: FeedItemRequested) -> None:
    """Step 2: one event, downloaded from the feed and written with the feed's rules. A
    failure makes the next fetch read the manifest again (no 304), to retry it."""
    keys = uow.get(KeyBox)
    async with uow.driver() as reader:
        feed = await feed_rows.feed(reader, event.feed_id)
    if feed is None or feed["org_id"] is None:
        await count_item(uow, event.job_id, failed=1, error="the feed was deleted")
        return

    @asynccontextmanager
    async def download() -> AsyncIterator[AsyncIterable[bytes]]:
        name = str(event.event_uuid)
        async with remote_feed_for(feed, keys) as remote, remote.event(name) as body:
            yield body

    fetched = await ingest(uow, job_id=event.job_id, event_uuid=event.event_uuid,
                           download=download, writer=FeedWriter(feed, event.event_uuid),
                           source="feed")  # fmt: skip
    if not fetched:
        async with uow:
            await feed_rows.forget_manifest(await driver_in_transaction(uow.session), feed["id"])
            await uow.commit()


class FeedWriter(PulledWriter):
    """A feed's event, written as MISP's ``Feed::__prepareEvent`` then ``Event::_add`` (by a
    site admin) leave it:

    - the feed's distribution (``distribution``, and ``sharing_group_id`` for 4) is the
      event's, its attributes, objects and reports inherit it (5); a feed of distribution 5
      (inherit) keeps the distributions the event carries, and an event that carries none
      becomes your organisation only (0); a sharing group that is gone: 0;
    - the feed's tag is added to the event's tags unless it has it (by name, any case);
    - ``settings.unpublish_event`` stores it unpublished;
    - held by the feed's organisation, created by its ``Orgc``, not locked;
    - ``<uuid>.json`` must be the event ``uuid``: the manifest entry is what the rules and
      the blocklists were checked against, so another event is refused.
    """

    locked = False
    spares_events_made_here = False

    def __init__(self, feed: Mapping[str, Any], event_uuid: uuid.UUID) -> None:
        source = {**feed, "remote_org_id": feed["orgc_id"], "internal": False}
        super().__init__(None, source, keep_distribution=False)  # _rewrite is the feed's
        self.feed = feed
        self.event_uuid = event_uuid
        self._carried = False

    def received(self, raw: Mapping[str, Any]) -> None:
        inner = raw.get("Event")
        body = inner if isinstance(inner, Mapping) else raw
        if str(body.get("uuid") or "").lower() != str(self.event_uuid):
            raise ValueError(f"the feed's {self.event_uuid}.json is another event")
        self._carried = not blank(body.get("distribution"))

    @property
    def source_server_id(self) -> int | None:
        return None  # a feed is no server: nothing to keep a push from sending back

    @property
    def _inherits(self) -> bool:
        return bool(self.feed["distribution"] == 5 and self._carried)

    def _rewrite(self, part: Any) -> None:
        if self._inherits:  # the event's own distributions, its groups captured by uuid
            if part.sharing_group is None:
                part.sharing_group_id = None
                part.distribution = access.received_distribution(
                    part.distribution, sharing_group_resolved=False
                )
            return
        part.sharing_group = None
        part.sharing_group_id = None
        if isinstance(part, EventIn):
            part.distribution = 0 if self.feed["distribution"] == 5 else self.feed["distribution"]
        else:
            part.distribution = 5

    def _event_group(self, event: EventIn) -> int | None:
        if self._inherits:
            return super()._event_group(event)
        if event.distribution == 4:
            return self.feed["sharing_group_id"]  # None once deleted: the event falls to 0
        return None

    async def start(self, event: EventIn) -> bool:
        if self.feed["tag_name"] and not any(
            t.name.lower() == self.feed["tag_name"].lower() for t in event.tags
        ):
            tag = {"name": self.feed["tag_name"], "colour": self.feed["tag_colour"],
                   "exportable": self.feed["tag_exportable"]}  # fmt: skip
            event.tags.append(TagIn.model_validate(tag))
        if (self.feed["settings"] or {}).get("unpublish_event"):
            event.published = False
        return await super().start(event)


# --- this instance's feed -----------------------------------------------------------------------

_EXPORTER = Viewer(
    user_id=0, user_uuid=uuid.UUID(int=0), email="", org_id=0, org_uuid=uuid.UUID(int=0),
    org_name="feed", role=MispRole.admin,
)  # fmt: skip
"""reads every part of an exported event; what a stranger may not see is left out after"""

_SHOWN = (3, 5)


def etag_of(body: bytes) -> str:
    return f'"{hashlib.sha256(body).hexdigest()}"'


async def exported_manifest(uow: UnitOfWork) -> bytes:
    """``manifest.json`` as PyMISP's ``MISPEvent.manifest`` writes each entry."""
    async with uow.driver() as conn:
        rows = await feed_rows.manifest_rows(conn)

    def render() -> bytes:
        manifest = {
            str(r["uuid"]): {
                "Orgc": {"name": r["orgc_name"], "uuid": str(r["orgc_uuid"])},
                "Tag": json.loads(r["tags"]),
                "info": r["info"],
                "date": str(r["date"]),
                "analysis": int(r["analysis"]),
                "threat_level_id": int(r["threat_level_id"]),
                "timestamp": int(r["timestamp"]),
            }
            for r in rows
        }
        return json.dumps(manifest, separators=(",", ":")).encode()

    return await anyio.to_thread.run_sync(render)


async def exported_hashes(uow: UnitOfWork) -> bytes:
    """``hashes.csv``: ``md5,event uuid`` per value a stranger sees (each half of a
    composite on its own line)."""
    async with uow.driver() as conn:
        rows = await feed_rows.hash_rows(conn)
    lines = []
    for row in rows:
        lines.append(f"{row['first']},{row['uuid']}\n")
        if row["second"]:
            lines.append(f"{row['second']},{row['uuid']}\n")
    return "".join(lines).encode()


async def exported_event(uow: UnitOfWork, event_uuid: uuid.UUID) -> bytes | None:
    """``<uuid>.json`` (PyMISP's ``to_feed()``) of a published event shared with all
    communities, with only the parts shared with all communities (or inheriting), no local
    tag, no sighting; None for any other event."""
    async with uow.driver() as conn:
        event_id = await feed_rows.exported_event_id(conn, event_uuid)
        if event_id is None:
            return None
        loaded = await store.load_event(conn, event_id, _EXPORTER, sightings=False)
    if loaded is None:
        return None
    objects = [o for o in loaded.objects if o["distribution"] in _SHOWN]
    kept = {o["id"] for o in objects}
    attributes = [
        a for a in loaded.attributes
        if a["distribution"] in _SHOWN and (not a["object_id"] or a["object_id"] in kept)
    ]  # fmt: skip
    shown = {a["id"] for a in attributes}

    def render() -> bytes:
        rendered = render_feed_event(
            loaded.event,
            orgc=loaded.orgc,
            attributes=attributes,
            objects=objects,
            references=[r for r in loaded.references if r["object_id"] in kept],
            tags=loaded.tags,
            attribute_tags=[(t, k) for t, k in loaded.attribute_tags if k["attribute_id"] in shown],
            reports=[r for r in loaded.reports if r["distribution"] in _SHOWN],
            with_local_tags=False,
        )
        return json.dumps(rendered, separators=(",", ":")).encode()

    return await anyio.to_thread.run_sync(render)
