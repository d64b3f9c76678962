"""MISP feeds: added and fetched as MISP does (the fake MISP's feed on 127.0.0.1, allowed for
the test), a fetch a job whose progress says what happened, the manifest's ETag, the feed's
distribution and tag on what comes in; and this instance's own published events exported as
a feed that PyMISP reads and that this service fetches back."""

from __future__ import annotations

import asyncio
import functools
import http.server
import json
import random
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pymisp import MISPEvent, MISPFeed, PyMISP

from tessera.common.testing import Infra, make_settings
from tessera.common.testing.broker import eventually
from tessera.common.testing.tokens import TokenMinter
from tessera.sync.app import create_app
from tessera.sync.service.feeds import passes_rules, start_due_fetches
from tessera.sync.settings import Settings
from tessera.sync.testing.fake_misp import Corpus, FakeMisp

from .conftest import Member, World


@pytest.fixture
def fake() -> Iterator[FakeMisp]:
    corpus = Corpus(events=8, attributes=12, distributions=(0, 1, 2, 3), orgs=2,
                    seed=random.randrange(2**31))  # fmt: skip
    with FakeMisp(corpus) as running:
        yield running


async def _admin(world: World) -> tuple[Member, dict[str, str]]:
    org = await world.organisation("Home")
    admin = await world.member("Admin", org, role="admin")
    return admin, world.tokens.bearer(admin.id, roles=["superadmin"]) | {
        "Accept": "application/json"
    }


async def _feed(world: World, auth: dict[str, str], url: str, **extra: Any) -> dict[str, Any]:
    body = {"name": "fake feed", "provider": "Fake", "url": url, "source_format": "misp",
            "enabled": True, "allow_private_addresses": True, "distribution": 2,
            **extra}  # fmt: skip
    added = await world.client.post("/sync/feeds/add", json={"Feed": body}, headers=auth)
    assert added.status_code == 200, added.text
    feed: dict[str, Any] = added.json()["Feed"]
    return feed


async def _fetched(world: World, headers: dict[str, str], feed_id: str) -> dict[str, Any]:
    started = await world.client.get(f"/sync/feeds/fetchFromFeed/{feed_id}", headers=headers)
    assert started.status_code == 200, started.text
    assert started.json()["result"].startswith("Pull queued for background execution.")
    job_url = started.json()["url"]

    async def done() -> dict[str, Any] | None:
        job = (await world.client.get(job_url, headers=headers)).json()
        return job if job["status"] in ("done", "failed") else None

    job: dict[str, Any] = await eventually(done, timeout=30, what="the feed's job")
    return job


async def _tag(world: World, name: str) -> int:
    rows = await world.query(
        "INSERT INTO tags (name, colour) VALUES ($1, '#123456') RETURNING id", name
    )
    return int(rows[0]["id"])


# -- the feeds -----------------------------------------------------------------------------------


async def test_a_feed_is_added_and_shown_as_pymisp_reads_it_without_its_headers(
    world: World,
) -> None:
    _, headers = await _admin(world)
    secret = "Authorization: sEcReT-feed-key-0123456789"

    feed = await _feed(world, headers, "https://feeds.example.org/osint", headers=secret)
    listed = await world.client.get("/sync/feeds/index", headers=headers)
    viewed = await world.client.get(f"/sync/feeds/view/{feed['id']}", headers=headers)

    assert feed["source_format"] == "misp"
    assert feed["distribution"] == "2"
    assert feed["headers"] == "Authorization: ...6789"
    assert "sEcReT" not in listed.text + viewed.text
    assert feed["id"] in [f["Feed"]["id"] for f in listed.json()]
    stored = await world.query("SELECT headers FROM feeds WHERE id = $1", int(feed["id"]))
    assert b"sEcReT" not in stored[0]["headers"]  # sealed at rest
    pymisp = MISPFeed()
    pymisp.from_dict(**viewed.json())
    assert (pymisp.name, pymisp.url, pymisp.settings) == ("fake feed", feed["url"], {})


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"source_format": "freetext"}, "source_format"),
        ({"source_format": None}, "source_format"),
        ({"input_source": "local", "url": "/var/feeds/osint"}, "input_source"),
        ({"url": "file:///etc/passwd"}, "url"),
        ({"url": "https://user:pw@feeds.example.org/"}, "url"),
        ({"distribution": 4}, "sharing_group_id"),
        ({"headers": "no header here"}, "headers"),
        ({"tag_id": 2**40}, "tag_id"),
    ],
)
async def test_what_no_feed_is_made_of_is_refused_naming_the_field(
    world: World, change: dict[str, Any], field: str
) -> None:
    _, headers = await _admin(world)
    body = {"name": "x", "provider": "y", "url": "https://feeds.example.org/", "source_format":
            "misp"} | change  # fmt: skip

    refused = await world.client.post("/sync/feeds/add", json=body, headers=headers)

    assert refused.status_code == 403, refused.text
    assert refused.json()["errors"][0]["field"] == field


async def test_only_site_admins_manage_and_fetch_feeds(world: World) -> None:
    _, headers = await _admin(world)
    feed = await _feed(world, headers, "https://feeds.example.org/osint")
    member = await world.member("Bob", await world.organisation("Other"), role="admin")

    for method, path in (("POST", "/sync/feeds/add"), ("GET", "/sync/feeds/index"),
                         ("GET", f"/sync/feeds/view/{feed['id']}"),
                         ("GET", f"/sync/feeds/fetchFromFeed/{feed['id']}")):  # fmt: skip
        answer = await world.client.request(method, path, json={}, headers=member.headers)
        assert answer.status_code == 403, (path, answer.text)


async def test_a_disabled_feed_is_not_fetched(world: World) -> None:
    _, headers = await _admin(world)
    feed = await _feed(world, headers, "https://feeds.example.org/osint", enabled=False)

    refused = await world.client.post(f"/sync/feeds/fetchFromFeed/{feed['id']}", headers=headers)

    assert refused.status_code == 403
    assert refused.json()["message"] == "Feed is currently not enabled. Make sure you enable it."


def _with_pymisp(url: str, key: str, feed_url: str) -> str:
    """What a PyMISP user does with a feed: add it, list it, view it, fetch it."""
    misp = PyMISP(url, key, ssl=False, timeout=30)
    feed = MISPFeed()
    feed.name, feed.provider, feed.url = "PyMISP feed", "Fake", feed_url
    feed.source_format, feed.enabled, feed.distribution = "misp", True, 3
    feed.allow_private_addresses = True
    added = misp.add_feed(feed, pythonify=True)
    assert isinstance(added, MISPFeed), added
    assert added.id in {f.id for f in misp.feeds(pythonify=True)}  # type: ignore[union-attr]
    viewed = misp.get_feed(added.id, pythonify=True)
    assert isinstance(viewed, MISPFeed)
    assert (viewed.name, viewed.url) == ("PyMISP feed", feed_url)
    started = misp.fetch_feed(added.id)
    assert isinstance(started, dict)
    assert started["result"].startswith("Pull queued for background execution."), started
    return str(started["job_id"])


async def test_pymisp_adds_lists_views_and_fetches_a_feed(
    world: World, served: str, fake: FakeMisp
) -> None:
    _, headers = await _admin(world)
    token = headers["Authorization"]  # a site admin's: PyMISP sends its "key" as it is

    job_id = await asyncio.to_thread(_with_pymisp, served, token, f"{fake.url}/feed")

    async def done() -> dict[str, Any] | None:
        job = (await world.client.get(f"/sync/jobs/{job_id}", headers=headers)).json()
        return job if job["status"] in ("done", "failed") else None

    job = await eventually(done, timeout=30, what="PyMISP's fetch")
    assert (job["status"], job["fetched"]) == ("done", 8)


# -- fetching ------------------------------------------------------------------------------------


async def test_a_fetch_brings_the_feed_in_with_its_distribution_and_tag(
    world: World, fake: FakeMisp
) -> None:
    admin, headers = await _admin(world)
    tag = f"feed:fake-{uuid.uuid4().hex[:8]}"
    feed = await _feed(world, headers, f"{fake.url}/feed", tag_id=await _tag(world, tag))

    job = await _fetched(world, headers, feed["id"])

    assert job["kind"] == "feed"
    assert job["feed_id"] == int(feed["id"])
    assert (job["status"], job["seen"], job["fetched"], job["failed"]) == ("done", 8, 8, 0)
    assert job["bytes"] > 0
    rows = await world.query(
        "SELECT e.uuid, e.distribution, e.locked, e.published, o.uuid AS org, c.uuid AS orgc, "
        "e.source_server_id, (SELECT array_agg(DISTINCT a.distribution) FROM attributes a "
        "WHERE a.event_id = e.id) AS parts, (SELECT array_agg(t.name) FROM event_tags et "
        "JOIN tags t ON t.id = et.tag_id WHERE et.event_id = e.id) AS tags "
        "FROM events e JOIN organisations o ON o.id = e.org_id "
        "JOIN organisations c ON c.id = e.orgc_id WHERE e.uuid = ANY($1::uuid[])",
        [uuid.UUID(u) for u in fake.uuids()],
    )  # fmt: skip
    assert len(rows) == 8
    for row in rows:
        assert row["distribution"] == 2  # the feed's, whatever the event said
        assert row["parts"] == [5]  # inheriting it
        assert tag in row["tags"]
        assert "type:OSINT" in row["tags"]
        assert row["org"] == admin.org  # held by the feed's organisation
        assert row["orgc"] != admin.org  # created by the feed's creator
        assert row["locked"] is False
        assert row["published"] is True
        assert row["source_server_id"] is None  # a feed is no server (a feed's id is not one)


async def test_a_second_fetch_of_an_unchanged_feed_is_not_modified(
    world: World, fake: FakeMisp
) -> None:
    _, headers = await _admin(world)
    feed = await _feed(world, headers, f"{fake.url}/feed")
    await _fetched(world, headers, feed["id"])
    fake.counters.reset()

    unchanged = await _fetched(world, headers, feed["id"])

    assert (unchanged["status"], unchanged["seen"], unchanged["fetched"]) == ("done", 0, 0)
    assert fake.counters.not_modified == 1
    assert sum(fake.counters.feed_views.values()) == 0

    changed = [fake.event_uuid(2), fake.event_uuid(5)]
    fake.bump(changed)
    fake.counters.reset()
    again = await _fetched(world, headers, feed["id"])

    assert (again["seen"], again["skipped"], again["fetched"]) == (8, 6, 2)
    assert set(fake.counters.feed_views) == set(changed)


async def test_the_feeds_rules_keep_events_out_before_anything_is_downloaded(
    world: World, fake: FakeMisp
) -> None:
    _, headers = await _admin(world)
    rules = {"tags": {"OR": [], "NOT": ["tlp:red"]}, "orgs": {"OR": [], "NOT": []}}
    feed = await _feed(world, headers, f"{fake.url}/feed", rules=rules)

    job = await _fetched(world, headers, feed["id"])

    assert (job["seen"], job["skipped"], job["fetched"]) == (8, 2, 6)  # distribution 0: red
    assert fake.event_uuid(0) not in fake.counters.feed_views


def test_rules_are_misps_on_the_manifest_entry() -> None:
    entry = {"Tag": [{"name": "tlp:clear"}], "Orgc": {"uuid": "u-1", "name": "CIRCL"}}

    assert passes_rules(entry, {})
    assert passes_rules(entry, {"tags": {"OR": ["tlp:clear", "x"]}, "orgs": {"OR": ["CIRCL"]}})
    assert not passes_rules(entry, {"tags": {"OR": ["tlp:green"]}})
    assert not passes_rules(entry, {"tags": {"NOT": ["tlp:clear"]}})
    assert not passes_rules(entry, {"orgs": {"NOT": ["u-1"]}})
    assert not passes_rules(entry, {"orgs": {"OR": ["Other"]}})


async def test_a_feed_inheriting_distribution_makes_events_without_one_private(
    world: World, fake: FakeMisp
) -> None:
    _, headers = await _admin(world)
    feed = await _feed(world, headers, f"{fake.url}/feed", distribution=5,
                       settings={"unpublish_event": True})  # fmt: skip

    await _fetched(world, headers, feed["id"])

    rows = await world.query(
        "SELECT distribution, published FROM events WHERE uuid = ANY($1::uuid[])",
        [uuid.UUID(u) for u in fake.uuids()],
    )
    assert {(r["distribution"], r["published"]) for r in rows} == {(0, False)}


async def test_a_feed_on_a_private_address_is_refused_without_the_flag(
    world: World, fake: FakeMisp
) -> None:
    _, headers = await _admin(world)
    feed = await _feed(world, headers, f"{fake.url}/feed", allow_private_addresses=False)

    job = await _fetched(world, headers, feed["id"])

    assert job["status"] == "failed"
    assert "127.0.0.1 is loopback" in job["error"]
    assert fake.counters.requests["feed/manifest"] == 0  # nothing was sent


async def test_a_feed_without_a_manifest_fails_its_job_saying_why(
    world: World, fake: FakeMisp
) -> None:
    _, headers = await _admin(world)
    feed = await _feed(world, headers, f"{fake.url}/nowhere")

    job = await _fetched(world, headers, feed["id"])

    assert job["status"] == "failed"
    assert "manifest.json: HTTP 403" in job["error"]  # the fake wants a key off its feed


@pytest.fixture
def static_feed(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """A folder served by a plain static web server on 127.0.0.1: a feed as files."""
    handler = functools.partial(_Quiet, directory=str(tmp_path))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield tmp_path, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


async def test_a_feed_file_holding_another_event_than_its_name_is_refused(
    world: World, static_feed: tuple[Path, str]
) -> None:
    _, headers = await _admin(world)
    folder, url = static_feed
    named, inside = uuid.uuid4(), uuid.uuid4()
    orgc = {"name": "Static", "uuid": str(uuid.uuid4())}
    manifest = {
        str(named): {
            "Orgc": orgc,
            "Tag": [],
            "info": "Named",
            "date": "2026-12-01",
            "analysis": 2,
            "threat_level_id": 3,
            "timestamp": 1764547200,
        }
    }
    event = {
        "Event": {
            "uuid": str(inside),
            "info": "Impostor",
            "date": "2026-12-01",
            "timestamp": "1764547200",
            "published": True,
            "Orgc": orgc,
            "Attribute": [{"type": "domain", "value": "impostor.example.org"}],
        }
    }
    (folder / "manifest.json").write_text(json.dumps(manifest))
    (folder / f"{named}.json").write_text(json.dumps(event))  # fmt: skip
    feed = await _feed(world, headers, url)

    job = await _fetched(world, headers, feed["id"])

    assert (job["status"], job["seen"], job["fetched"], job["failed"]) == ("done", 1, 0, 1)
    assert "is another event" in job["error"]
    assert not await world.query(
        "SELECT 1 FROM events WHERE uuid = ANY($1::uuid[])", [named, inside]
    )


async def test_a_feed_event_whose_creator_is_blocklisted_is_skipped_once_downloaded(
    world: World, static_feed: tuple[Path, str]
) -> None:
    _, headers = await _admin(world)
    folder, url = static_feed
    event_uuid, blocked = uuid.uuid4(), uuid.uuid4()
    listed = {"name": "Listed", "uuid": str(uuid.uuid4())}  # what the manifest says
    manifest = {
        str(event_uuid): {"Orgc": listed, "Tag": [], "info": "Blocked", "timestamp": 1764547200}
    }
    event = {
        "Event": {
            "uuid": str(event_uuid),
            "info": "Blocked",
            "timestamp": "1764547200",
            "Orgc": {"name": "Blocked", "uuid": str(blocked)},
            "Attribute": [{"type": "domain", "value": "blocked.example.org"}],
        }
    }
    (folder / "manifest.json").write_text(json.dumps(manifest))
    (folder / f"{event_uuid}.json").write_text(json.dumps(event))  # fmt: skip
    await world.query(
        "INSERT INTO org_blocklists (org_uuid, created_at) VALUES ($1, now())", blocked
    )
    feed = await _feed(world, headers, url)

    job = await _fetched(world, headers, feed["id"])

    assert (job["status"], job["seen"], job["skipped"], job["failed"]) == ("done", 1, 1, 0)
    assert not await world.query("SELECT 1 FROM events WHERE uuid = $1", event_uuid)


async def test_the_schedule_starts_each_due_feed_once(world: World, fake: FakeMisp) -> None:
    _, headers = await _admin(world)
    feed = await _feed(world, headers, f"{fake.url}/feed", fetch_every_s=3600)
    runtime = world.app.state.runtime

    first = await start_due_fetches(runtime.uow())
    again = await start_due_fetches(runtime.uow())

    jobs = await world.query(
        "SELECT id FROM jobs WHERE feed_id = $1 AND id = ANY($2::uuid[])", int(feed["id"]), first
    )
    assert len(jobs) == 1
    assert not await world.query(
        "SELECT 1 FROM jobs WHERE feed_id = $1 AND id = ANY($2::uuid[])", int(feed["id"]), again
    )


async def test_the_service_fetches_a_due_feed_by_itself(
    world: World, fake: FakeMisp, infra: Infra, tokens: TokenMinter
) -> None:
    _, headers = await _admin(world)
    feed = await _feed(world, headers, f"{fake.url}/feed", fetch_every_s=3600)
    quick = create_app(make_settings(Settings, infra, feeds_check_every_s=0.2),
                       key_source=tokens.key_source)  # fmt: skip

    async with quick.router.lifespan_context(quick):
        jobs = await eventually(
            lambda: world.query(
                "SELECT fetched, requested_by FROM jobs WHERE feed_id = $1 AND status = 'done'",
                int(feed["id"]),
            ),
            timeout=30,
            what="the scheduled fetch",
        )

    assert [(j["fetched"], j["requested_by"]) for j in jobs] == [(8, None)]


# -- this instance's feed ------------------------------------------------------------------------


async def _event(member: Member, world: World, **body: Any) -> dict[str, Any]:
    added = await world.client.post("/sync/events/add", json=body, headers=member.headers)
    assert added.status_code == 200, added.text
    event: dict[str, Any] = added.json()["Event"]
    return event


async def test_published_events_shared_with_all_are_our_feed(world: World) -> None:
    ada = await world.member("Ada", await world.organisation("Exporter"), role="admin")
    exported = await _event(
        ada, world, info="Exported", distribution=3, published=True,
        Tag=[{"name": "tlp:clear"}],
        Attribute=[{"type": "ip-dst", "value": "198.51.100.7"},
                   {"type": "domain", "value": "private.example.org", "distribution": 0},
                   {"type": "ip-dst|port", "value": "198.51.100.8|443"}],
    )  # fmt: skip
    community = await _event(ada, world, info="Community", distribution=1, published=True,
                             Attribute=[{"type": "domain", "value": "c.example.org"}])  # fmt: skip
    draft = await _event(ada, world, info="Draft", distribution=3,
                         Attribute=[{"type": "domain", "value": "d.example.org"}])  # fmt: skip

    manifest = await world.client.get("/sync/feed/manifest.json", headers=ada.headers)
    again = await world.client.get(
        "/sync/feed/manifest.json",
        headers=ada.headers | {"If-None-Match": manifest.headers["etag"]},
    )
    hashes = (await world.client.get("/sync/feed/hashes.csv", headers=ada.headers)).text
    body = await world.client.get(f"/sync/feed/{exported['uuid']}.json", headers=ada.headers)

    entry = manifest.json()[exported["uuid"]]
    assert entry["info"] == "Exported"
    assert entry["Orgc"]["uuid"] == str(ada.org)
    assert [t["name"] for t in entry["Tag"]] == ["tlp:clear"]
    assert community["uuid"] not in manifest.json()
    assert draft["uuid"] not in manifest.json()
    assert again.status_code == 304
    lines = set(hashes.splitlines())
    for value in ("198.51.100.7", "198.51.100.8", "443"):
        assert f"{_md5(value)},{exported['uuid']}" in lines
    assert not any(line.startswith(_md5("private.example.org")) for line in lines)
    event = MISPEvent()
    event.load(body.json())
    assert {a.value for a in event.attributes} == {"198.51.100.7", "198.51.100.8|443"}
    assert "distribution" not in body.json()["Event"]
    for hidden in (community, draft):
        missing = await world.client.get(f"/sync/feed/{hidden['uuid']}.json", headers=ada.headers)
        assert missing.status_code == 404
    assert (await world.client.get("/sync/feed/manifest.json")).status_code == 403  # a key


def _md5(value: str) -> str:
    import hashlib

    return hashlib.md5(value.encode(), usedforsecurity=False).hexdigest()


async def test_our_feed_fetched_by_a_feed_entry_finds_it_all_here_already(
    world: World, served: str
) -> None:
    admin, headers = await _admin(world)
    await _event(admin, world, info="Round trip", distribution=3, published=True,
                 Attribute=[{"type": "domain", "value": "round.example.org"}])  # fmt: skip
    feed = await _feed(world, headers, f"{served}feed", headers=f"Authorization: {admin.key}")

    first = await _fetched(world, headers, feed["id"])
    second = await _fetched(world, headers, feed["id"])

    assert first["status"] == "done", first
    assert first["seen"] >= 1
    assert (first["skipped"], first["fetched"]) == (first["seen"], 0)  # here, as new
    assert (second["status"], second["seen"]) == ("done", 0)  # 304: the manifest's ETag


# -- editing, enabling, deleting -----------------------------------------------------------------


async def test_a_feed_edit_changes_what_is_sent_and_keeps_the_headers_unless_new(
    world: World, fake: FakeMisp
) -> None:
    _, headers = await _admin(world)
    feed = await _feed(world, headers, f"{fake.url}/feed", headers="Authorization: secret-one")
    url = f"/sync/feeds/edit/{feed['id']}"
    [before] = await world.query(
        "UPDATE feeds SET manifest_etag = 'x' WHERE id = $1 RETURNING headers", int(feed["id"])
    )

    renamed = await world.client.post(url, headers=headers, json={"Feed": {"name": "renamed"}})
    sent_back = await world.client.post(url, headers=headers, json=renamed.json())
    [kept] = await world.query("SELECT headers, manifest_etag FROM feeds WHERE id = $1",
                               int(feed["id"]))  # fmt: skip
    rekeyed = await world.client.put(
        url, headers=headers, json={"headers": "Authorization: secret-two", "url": fake.url + "/"}
    )
    [changed] = await world.query("SELECT headers, manifest_etag FROM feeds WHERE id = $1",
                                  int(feed["id"]))  # fmt: skip
    bad = await world.client.post(url, headers=headers, json={"distribution": 9})
    missing = await world.client.post("/sync/feeds/edit/999999999", headers=headers, json={})

    assert renamed.status_code == 200, renamed.text
    assert renamed.json()["Feed"]["name"] == "renamed"
    assert renamed.json()["Feed"]["url"] == f"{fake.url}/feed"  # not sent: kept
    assert renamed.json()["Feed"]["headers"] == "Authorization: ...-one"
    assert sent_back.status_code == 200, sent_back.text
    assert kept["headers"] == before["headers"]  # not sealed again: the same header
    assert kept["manifest_etag"] == "x"
    assert rekeyed.json()["Feed"]["headers"] == "Authorization: ...-two"
    assert changed["headers"] != kept["headers"]
    assert "secret-two" not in str(changed["headers"])  # sealed
    assert changed["manifest_etag"] is None  # another URL
    assert bad.status_code == 403
    assert bad.json()["errors"][0]["field"] == "distribution"
    assert missing.status_code == 404


async def test_fetching_all_feeds_starts_one_job_per_enabled_feed(
    world: World, fake: FakeMisp
) -> None:
    admin, headers = await _admin(world)
    on = await _feed(world, headers, f"{fake.url}/feed")
    off = await _feed(world, headers, f"{fake.url}/feed", enabled=False)
    user = await world.member("User", admin.org)

    started = await world.client.post("/sync/feeds/fetchFromAllFeeds", headers=headers)
    refused = await world.client.post("/sync/feeds/fetchFromAllFeeds", headers=user.headers)

    assert started.status_code == 200, started.text
    assert started.json()["result"] == "Pull queued for background execution."
    by_feed = {j["feed_id"]: j for j in started.json()["jobs"]}
    assert on["id"] in by_feed
    assert off["id"] not in by_feed
    assert refused.status_code == 403

    async def done() -> dict[str, Any] | None:
        job = (await world.client.get(by_feed[on["id"]]["url"], headers=headers)).json()
        return job if job["status"] in ("done", "failed") else None

    job = await eventually(done, timeout=30, what="the enabled feed's job")
    assert (job["status"], job["fetched"]) == ("done", 8)


def _manage_with_pymisp(url: str, key: str, feed_url: str) -> None:
    """PyMISP's update_feed, disable_feed, enable_feed, delete_feed, unchanged."""
    misp = PyMISP(url, key, ssl=False, timeout=30)
    feed = MISPFeed()
    feed.name, feed.provider, feed.url = "PyMISP feed", "Fake", feed_url
    feed.source_format, feed.enabled, feed.distribution = "misp", True, 3
    feed.headers = "Authorization: a-long-secret"
    added = misp.add_feed(feed, pythonify=True)
    assert isinstance(added, MISPFeed), added
    added.name = "renamed by PyMISP"
    updated = misp.update_feed(added, pythonify=True)
    assert isinstance(updated, MISPFeed), updated
    assert updated.name == "renamed by PyMISP"
    assert updated.headers == "Authorization: ...cret"  # the hint sent back kept the header
    assert misp.disable_feed(added.id, pythonify=True).enabled is False  # type: ignore[union-attr]
    assert "errors" in misp.fetch_feed(added.id)
    assert misp.enable_feed(added.id, pythonify=True).enabled is True  # type: ignore[union-attr]
    assert misp.delete_feed(added.id)["message"] == "Feed deleted."
    assert "errors" in misp.get_feed(added.id)


async def test_pymisp_updates_disables_enables_and_deletes_a_feed(
    world: World, served: str
) -> None:
    _, headers = await _admin(world)

    await asyncio.to_thread(
        _manage_with_pymisp, served, headers["Authorization"], "https://feeds.example.org/x"
    )
