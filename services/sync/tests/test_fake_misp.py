"""The fake remote MISP answers as MISP does, from deterministic events, within its budget.

Shapes are checked with PyMISP (what MISP's own tools load) and with our MISP validator
(``tessera.sync.misp_types.check``, MISP's rules); the server runs in a thread, on a socket,
as the sync service and the bench use it.
"""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from pymisp import MISPAttribute, MISPEvent

from tessera.sync.misp_types import check, describe_types
from tessera.sync.testing.fake_misp import (
    DEFAULT_KEY,
    Corpus,
    FakeMisp,
    event_uuid,
    make_event,
)

MINIMAL_KEYS = {"id", "timestamp", "sighting_timestamp", "published", "uuid", "orgc_uuid"}
PULL_PARAMS = "deleted[]:0/deleted[]:1/excludeGalaxy:1/includeEventCorrelations:0/" \
    "includeFeedCorrelations:0/includeWarninglistHits:0/excludeLocalTags:1"  # fmt: skip


@pytest.fixture
def corpus() -> Corpus:
    return Corpus(events=6, attributes=40, sightings=2, deleted_every=9,
                  distributions=(0, 1, 2, 3, 4), unpublished_every=3, orgs=2)  # fmt: skip


@pytest.fixture
def fake(corpus: Corpus) -> Iterator[FakeMisp]:
    with FakeMisp(corpus) as running:
        yield running


@pytest.fixture
def misp(fake: FakeMisp) -> Iterator[httpx.Client]:
    headers = {"Authorization": fake.key, "Accept": "application/json"}
    with httpx.Client(base_url=fake.url, headers=headers, timeout=60) as client:
        yield client


def index(misp: httpx.Client, etag: str = '""', **filters: Any) -> httpx.Response:
    """``events/index`` as ``Server::getEventIndexFromServer`` asks for it."""
    body = {"minimal": 1, "published": 1, **filters}
    return misp.post("/events/index", json=body, headers={"If-None-Match": etag})


# -- generation ------------------------------------------------------------------------------


def test_same_seed_and_number_make_the_same_event() -> None:
    first = make_event(7, attributes=30, seed=3)
    assert make_event(7, attributes=30, seed=3) == first
    assert first["Event"]["uuid"] == event_uuid(7, seed=3)
    other = make_event(7, attributes=30, seed=4)["Event"]
    assert other["uuid"] != first["Event"]["uuid"]
    assert {a["uuid"] for a in other["Attribute"]}.isdisjoint(
        a["uuid"] for a in first["Event"]["Attribute"]
    )


def test_a_bump_moves_the_timestamp_and_changes_one_attribute_keeping_uuids() -> None:
    before = make_event(2, attributes=20, seed=1)["Event"]
    after = make_event(2, attributes=20, seed=1, revision=1)["Event"]
    assert int(after["timestamp"]) > int(before["timestamp"])
    assert [a["uuid"] for a in after["Attribute"]] == [a["uuid"] for a in before["Attribute"]]
    changed = [(b, a) for b, a in zip(before["Attribute"], after["Attribute"], strict=True)
               if b != a]  # fmt: skip
    assert len(changed) == 1
    (old, new), = changed  # fmt: skip
    assert new["value"] != old["value"]
    assert new["type"] == old["type"]
    assert new["timestamp"] == after["timestamp"]
    assert max(int(a["timestamp"]) for a in after["Attribute"]) <= int(after["timestamp"])


def test_generated_attributes_are_valid_misp_attributes() -> None:
    types = describe_types()
    seen: set[str] = set()
    for n in range(10):
        for attribute in make_event(n, attributes=300, seed=n)["Event"]["Attribute"]:
            kind, value, category = attribute["type"], attribute["value"], attribute["category"]
            seen.add(kind)
            assert kind in types["types"]
            MISPAttribute(strict=True).from_dict(**attribute)  # type and category agree
            # already in the form a MISP server stores: valid and normalised
            assert check(kind, value, category=category).value == value
    assert {"ip-dst", "domain", "url", "md5", "sha256", "email-src", "filename|md5"} <= seen


def test_an_event_loads_in_pymisp_with_its_attributes_tags_and_sightings() -> None:
    document = make_event(1, attributes=25, seed=0, sightings=3, deleted_every=5)
    event = MISPEvent()
    event.load(document)
    assert event.uuid == event_uuid(1)
    assert len(event.attributes) == 25
    assert sum(bool(a.deleted) for a in event.attributes) == 5
    assert int(document["Event"]["attribute_count"]) == 20
    assert sum(len(a.sightings) for a in event.attributes) == 3
    assert "tlp:clear" in {t.name for t in event.tags}
    assert event.orgc.uuid
    assert event.org.name == "Fake MISP"


# -- connecting ------------------------------------------------------------------------------


def test_a_misp_client_connects_as_pymisp_does(misp: httpx.Client) -> None:
    version = misp.get("/servers/getVersion").json()
    assert [int(p) for p in version["version"].split(".")] >= [2, 5]
    assert version["perm_sync"] is True
    assert "gzip" in version["request_encoding"]
    me = misp.get("/users/view/me.json").json()
    assert {"User", "Role", "UserSetting", "Organisation"} <= me.keys()
    assert me["Role"]["perm_sync"] is True
    types = misp.get("/attributes/describeTypes.json").json()["result"]
    assert "ip-dst" in types["types"]


@pytest.mark.parametrize("key", [None, "wrong", DEFAULT_KEY.lower()])
def test_a_wrong_or_missing_key_is_refused_in_misps_words(fake: FakeMisp, key: str | None) -> None:
    headers = {"Authorization": key} if key is not None else {}
    response = httpx.get(f"{fake.url}/users/view/me", headers=headers)
    assert response.status_code == 403
    assert response.json()["message"].startswith("Authentication failed.")
    assert httpx.post(f"{fake.url}/events/index", headers=headers, json={}).status_code == 403


# -- the index -------------------------------------------------------------------------------


def test_the_minimal_index_lists_published_events_in_misps_shape(
    misp: httpx.Client, fake: FakeMisp
) -> None:
    entries = index(misp).json()
    assert entries
    assert all(set(entry) == MINIMAL_KEYS for entry in entries)
    assert all(entry["published"] is True for entry in entries)
    assert {e["uuid"] for e in entries} == {fake.event_uuid(n) for n in (0, 1, 3, 4)}
    everything = misp.post("/events/index", json={"minimal": 1}).json()
    assert len(everything) == 6
    named = misp.get("/events/index/minimal:1/published:1.json").json()
    assert named == entries


def test_the_index_filters_by_timestamp_and_org(misp: httpx.Client, fake: FakeMisp) -> None:
    entries = index(misp, published=[0, 1]).json()
    newest = max(int(e["timestamp"]) for e in entries)
    latest = index(misp, published=[0, 1], timestamp=newest).json()
    assert [e["timestamp"] for e in latest] == [str(newest)]
    org = entries[0]["orgc_uuid"]
    mine = index(misp, org=org).json()
    assert mine
    assert {e["orgc_uuid"] for e in mine} == {org}
    assert {e["orgc_uuid"] for e in index(misp, org=f"!{org}").json()} == {
        e["orgc_uuid"] for e in entries} - {org}  # fmt: skip


def test_the_full_index_carries_orgs_and_tags(misp: httpx.Client) -> None:
    entries = misp.post("/events/index", json={"published": 1}).json()
    assert {"Org", "Orgc", "EventTag", "info", "distribution"} <= entries[0].keys()


def test_an_unchanged_index_is_not_modified_and_a_bump_changes_it(
    misp: httpx.Client, fake: FakeMisp
) -> None:
    first = index(misp)
    etag = first.headers["ETag"]
    again = index(misp, etag)
    assert again.status_code == 304
    assert again.content == b""
    assert index(misp, etag.rstrip('"') + '-gzip"').status_code == 304  # Apache's mark
    assert "ETag" not in misp.post("/events/index", json={"minimal": 1}).headers  # as MISP
    bumped = fake.event_uuid(1)
    fake.bump([bumped])
    changed = index(misp, etag)
    assert changed.status_code == 200
    assert changed.headers["ETag"] != etag
    before = {e["uuid"]: e["timestamp"] for e in first.json()}
    after = {e["uuid"]: e["timestamp"] for e in changed.json()}
    assert {u for u in after if after[u] != before[u]} == {bumped}
    assert fake.counters.not_modified == 2


def test_a_re_pull_downloads_only_what_changed(misp: httpx.Client, fake: FakeMisp) -> None:
    def pull(etag: str, known: dict[str, str]) -> str:
        response = index(misp, etag)
        if response.status_code == 304:
            return etag
        for entry in response.json():
            if known.get(entry["uuid"]) != entry["timestamp"]:
                event = misp.get(f"/events/view/{entry['uuid']}/{PULL_PARAMS}").json()
                known[entry["uuid"]] = event["Event"]["timestamp"]
        return response.headers["ETag"]

    known: dict[str, str] = {}
    etag = pull('""', known)
    assert sum(fake.counters.views.values()) == 4
    fake.counters.reset()
    etag = pull(etag, known)
    assert fake.counters.views == {}
    assert fake.counters.not_modified == 1
    assert fake.counters.bytes_sent == 0
    fake.bump([fake.event_uuid(3)])
    pull(etag, known)
    assert dict(fake.counters.views) == {fake.event_uuid(3): 1}
    assert fake.counters.attributes_sent == 40


# -- one event -------------------------------------------------------------------------------


def test_a_view_serves_the_generated_event_by_uuid_or_id(
    misp: httpx.Client, fake: FakeMisp, corpus: Corpus
) -> None:
    uuid = fake.event_uuid(4)
    pulled = misp.get(f"/events/view/{uuid}/{PULL_PARAMS}").json()
    expected = make_event(4, attributes=40, orgc=pulled["Event"]["Orgc"], distribution=4,
                          sightings=2, deleted_every=9, exclude_local_tags=True)  # fmt: skip
    expected["Event"]["Orgc"]["local"] = False
    assert pulled == expected
    assert misp.get("/events/view/5.json").json()["Event"]["uuid"] == uuid
    assert pulled["Event"]["distribution"] == "4"
    assert "SharingGroup" in pulled["Event"]


def test_a_view_honours_deleted_local_tags_and_metadata(misp: httpx.Client, fake: FakeMisp) -> None:
    uuid = fake.event_uuid(0)

    def view(params: str = "") -> dict[str, Any]:
        document: dict[str, Any] = misp.get(f"/events/view/{uuid}{params}").json()["Event"]
        return document

    assert len(view()["Attribute"]) == 36  # not deleted only, MISP's default
    assert len(view("/deleted[]:0/deleted[]:1")["Attribute"]) == 40
    assert len(view("/deleted:1")["Attribute"]) == 40
    assert {a["deleted"] for a in view("/deleted:2")["Attribute"]} == {True}
    assert any(t["local"] for t in view()["Tag"])
    assert not any(t["local"] for t in view("/excludeLocalTags:1")["Tag"])
    assert "Attribute" not in view("/metadata:1")


def test_head_says_whether_an_event_exists(misp: httpx.Client, fake: FakeMisp) -> None:
    assert misp.head(f"/events/view/{fake.event_uuid(0)}").status_code == 200
    assert misp.head(f"/events/view/{event_uuid(0, seed=99)}").status_code == 404
    missing = misp.get("/events/view/999")
    assert missing.status_code == 404
    assert missing.json()["message"] == "Invalid event"


def test_a_view_is_not_modified_until_the_event_changes(misp: httpx.Client, fake: FakeMisp) -> None:
    url = f"/events/view/{fake.event_uuid(0)}"
    etag = misp.get(url, headers={"If-None-Match": '""'}).headers["ETag"]
    assert misp.get(url, headers={"If-None-Match": etag}).status_code == 304
    fake.bump([fake.event_uuid(0)])
    assert misp.get(url, headers={"If-None-Match": etag}).status_code == 200


def test_a_huge_event_streams_with_bounded_memory() -> None:
    with FakeMisp(Corpus(events=1, attributes=1, huge=150_000)) as fake:
        huge = fake.event_uuid(1)
        received = 0
        tracemalloc.start()
        try:
            url = f"{fake.url}/events/view/{huge}/deleted[]:0/deleted[]:1"
            headers = {"Authorization": fake.key}
            with httpx.stream("GET", url, headers=headers, timeout=120) as response:
                assert response.headers.get("transfer-encoding") == "chunked"
                tail = b""
                for chunk in response.iter_raw():
                    received += len(chunk)
                    tail = (tail + chunk)[-64:]
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert fake.counters.attributes_sent == 150_000
        assert received == fake.counters.bytes_sent > 50_000_000  # bigger than the budget
        assert peak < 50_000_000, f"peak {peak / 1e6:.1f} MB"
        assert tail.endswith(b"}}")


def test_a_huge_event_is_one_valid_document() -> None:
    with FakeMisp(Corpus(events=0, huge=20_000)) as fake:
        response = httpx.get(f"{fake.url}/events/view/{fake.event_uuid(0)}",
                             headers={"Authorization": fake.key}, timeout=60)  # fmt: skip
    event = response.json()["Event"]
    assert len(event["Attribute"]) == 20_000 == len({a["uuid"] for a in event["Attribute"]})
    assert len({a["id"] for a in event["Attribute"]}) == 20_000


# -- sightings -------------------------------------------------------------------------------


def test_sightings_of_events_are_searched_as_misp_pulls_them(
    misp: httpx.Client, fake: FakeMisp
) -> None:
    wanted = [fake.event_uuid(0), fake.event_uuid(1)]
    body = {"returnFormat": "json", "last": 0, "includeUuid": True, "uuid": wanted}
    found = misp.post("/sightings/restSearch/event", json=body).json()["response"]
    assert len(found) == 4
    sighting = found[0]["Sighting"]
    assert {"uuid", "attribute_uuid", "event_uuid", "date_sighting", "value"} <= sighting.keys()
    assert {s["Sighting"]["event_uuid"] for s in found} == set(wanted)
    entries = {e["uuid"]: e for e in index(misp).json()}
    assert entries[wanted[0]]["sighting_timestamp"] == max(
        s["Sighting"]["date_sighting"] for s in found
        if s["Sighting"]["event_uuid"] == wanted[0])  # fmt: skip
    recent = misp.post("/sightings/restSearch/event", json={**body, "last": "1d"}).json()
    assert recent == {"response": []}  # generated sightings are from 2023


# -- pushing ---------------------------------------------------------------------------------


def pushed_event(uuid: str, timestamp: int, *, attributes: int = 1) -> dict[str, Any]:
    return {"Event": {
        "uuid": uuid, "info": "pushed", "timestamp": str(timestamp), "published": True,
        "distribution": "1", "Orgc": {"name": "Pusher", "uuid": event_uuid(0, seed=77)},
        "Attribute": [{"type": "ip-dst", "category": "Network activity",
                       "value": f"203.0.113.{i}", "uuid": event_uuid(i, seed=78)}
                      for i in range(attributes)],
    }}  # fmt: skip


def test_filter_event_ids_for_push_answers_what_is_missing_or_older(
    misp: httpx.Client, fake: FakeMisp
) -> None:
    held = index(misp, published=[0, 1]).json()
    older, same = held[0], held[1]
    unknown = event_uuid(0, seed=50)
    candidates = [
        {"Event": {"uuid": unknown, "timestamp": "1"}},
        {"Event": {"uuid": older["uuid"], "timestamp": str(int(older["timestamp"]) + 1)}},
        {"Event": {"uuid": same["uuid"], "timestamp": same["timestamp"]}},
    ]
    answer = misp.post("/events/filterEventIdsForPush", json=candidates).json()
    assert answer == [unknown, older["uuid"]]


def test_sightings_pushed_on_their_own_are_kept_once_and_move_the_index(
    misp: httpx.Client, fake: FakeMisp
) -> None:
    uuid = event_uuid(0, seed=52)
    event = pushed_event(uuid, 1_700_500_000, attributes=2)
    carried = event_uuid(1, seed=52)
    event["Event"]["Attribute"][0]["Sighting"] = [{"uuid": carried, "type": "0"}]
    assert misp.post("/events/add", json=event).status_code == 200
    attribute = event["Event"]["Attribute"][1]["uuid"]
    new = {"uuid": event_uuid(2, seed=52), "attribute_uuid": attribute, "type": "0",
           "date_sighting": "1700500100", "source": "", "org_id": "0"}  # fmt: skip
    unknown_attribute = {**new, "uuid": event_uuid(3, seed=52), "attribute_uuid": carried}

    known = misp.post(f"/sightings/filterSightingUuidsForPush/{uuid}",
                      json=[carried, new["uuid"]])  # fmt: skip
    saved = misp.post(f"/sightings/bulkSaveSightings/{uuid}", json=[new, unknown_attribute])
    again = misp.post(f"/sightings/bulkSaveSightings/{uuid}", json={"Sighting": [new]})

    assert known.json() == [carried]  # carried by the pushed event
    assert saved.json() == {"saved": True, "success": "1 sightings added."}
    assert again.json() == {"saved": False, "success": "No sightings added."}
    assert set(fake.received_sightings[uuid]) == {new["uuid"]}
    assert misp.post(f"/sightings/filterSightingUuidsForPush/{uuid}",
                     json=[new["uuid"]]).json() == [new["uuid"]]  # fmt: skip
    entry = {e["uuid"]: e for e in index(misp).json()}[uuid]
    assert int(entry["sighting_timestamp"]) > 0
    generated = fake.event_uuid(0)  # its first two attributes were sighted
    asked = misp.post(f"/sightings/filterSightingUuidsForPush/{generated}",
                      json=[event_uuid(9, seed=52)]).json()  # fmt: skip
    assert asked == []
    missing = misp.post(f"/sightings/filterSightingUuidsForPush/{event_uuid(4, seed=52)}",
                        json=[])  # fmt: skip
    assert (missing.status_code, missing.json()["message"]) == (404, "Event not found")
    refused = misp.post(f"/sightings/bulkSaveSightings/{event_uuid(4, seed=52)}", json=[new])
    assert refused.status_code == 405
    assert refused.json()["message"] == "Event not found or not accessible by this user."


def test_a_new_event_is_added_and_listed(misp: httpx.Client, fake: FakeMisp) -> None:
    uuid = event_uuid(0, seed=51)
    added = misp.post("/events/add/metadata:1", json=pushed_event(uuid, 1_700_500_000))
    assert added.status_code == 200
    assert added.json()["Event"]["uuid"] == uuid
    assert added.json()["Event"]["id"]
    assert fake.pushed[uuid].timestamp == 1_700_500_000
    assert uuid in {e["uuid"] for e in index(misp).json()}
    viewed = misp.get(f"/events/view/{uuid}").json()["Event"]
    assert viewed["Attribute"][0]["value"] == "203.0.113.0"
    assert fake.counters.pushes["added"] == 1


def test_adding_an_existing_event_answers_404_with_its_location(
    misp: httpx.Client, fake: FakeMisp
) -> None:
    held = misp.get("/events/view/2").json()["Event"]
    response = misp.post("/events/add/metadata:1",
                         json=pushed_event(held["uuid"], int(held["timestamp"]) + 10))  # fmt: skip
    assert response.status_code == 404
    assert response.headers["Location"].endswith("/events/2")
    assert response.json()["message"].startswith("Event already exists")


def test_an_edit_must_be_newer_than_the_copy_held(misp: httpx.Client, fake: FakeMisp) -> None:
    held = misp.get("/events/view/2").json()["Event"]
    stale = misp.post(f"/events/edit/{held['uuid']}/metadata:1",
                      json=pushed_event(held["uuid"], int(held["timestamp"])))  # fmt: skip
    assert stale.status_code == 403
    assert stale.json()["errors"] == (
        "Event could not be saved: Event in the request not newer than the local copy."
    )
    newer = int(held["timestamp"]) + 60
    edited = misp.post("/events/edit/2/metadata:1", json=pushed_event(held["uuid"], newer))
    assert edited.status_code == 200
    assert edited.json()["Event"]["id"] == "2"
    listed = {e["uuid"]: e for e in index(misp).json()}
    assert listed[held["uuid"]]["timestamp"] == str(newer)
    assert misp.post("/events/edit/999", json=pushed_event(held["uuid"], newer)).status_code == 404
    assert dict(fake.counters.pushes) == {"not newer": 1, "edited": 1}


def test_a_published_empty_event_and_a_deleted_one_are_refused(
    misp: httpx.Client, fake: FakeMisp
) -> None:
    empty = pushed_event(event_uuid(1, seed=52), 1_700_500_000, attributes=0)
    refused = misp.post("/events/add", json=empty)
    assert refused.status_code == 403
    assert "empty" in refused.json()["errors"]["Event"]
    gone = fake.event_uuid(0)
    fake.delete([gone])
    assert gone not in {e["uuid"] for e in index(misp, published=[0, 1]).json()}
    assert misp.get(f"/events/view/{gone}").status_code == 404
    blocked = misp.post("/events/add", json=pushed_event(gone, 1_800_000_000))
    assert blocked.status_code == 403
    assert "blocklist" in blocked.json()["message"]


# -- the feed --------------------------------------------------------------------------------


def test_the_feed_is_what_pymisp_would_write(misp: httpx.Client, fake: FakeMisp) -> None:
    manifest = misp.get("/feed/manifest.json").json()
    assert set(manifest) == {fake.event_uuid(n) for n in (0, 1, 3, 4)}
    hashes = misp.get("/feed/hashes.csv").text.splitlines()
    for uuid, entry in manifest.items():
        viewed = MISPEvent()
        viewed.load(misp.get(f"/events/view/{uuid}").json())
        feed = misp.get(f"/feed/{uuid}.json").json()
        assert feed == viewed.to_feed(with_local_tags=False)
        reloaded = MISPEvent()
        reloaded.load(feed)
        assert entry == reloaded.manifest[uuid]
        assert [line for line in hashes if line.endswith(uuid)] == [
            f"{h},{uuid}" for h in reloaded.attributes_hashes("md5")]  # fmt: skip
    assert misp.get(f"/feed/{fake.event_uuid(2)}.json").status_code == 404  # unpublished


def test_the_feed_manifest_is_not_modified_until_an_event_changes(
    fake: FakeMisp, misp: httpx.Client
) -> None:
    first = httpx.get(f"{fake.url}/feed/manifest.json")  # a feed needs no key
    etag = first.headers["ETag"]
    assert httpx.get(f"{fake.url}/feed/manifest.json",
                     headers={"If-None-Match": etag}).status_code == 304  # fmt: skip
    fake.bump([fake.event_uuid(0)])
    again = httpx.get(f"{fake.url}/feed/manifest.json", headers={"If-None-Match": etag})
    assert again.status_code == 200
    assert again.headers["ETag"] != etag
    assert fake.counters.requests["feed/manifest"] == 3


# -- running ---------------------------------------------------------------------------------


def test_gzip_is_offered_to_clients_that_accept_it() -> None:
    with FakeMisp(Corpus(events=1, attributes=500), gzip=True) as fake:
        url = f"{fake.url}/events/view/1"
        headers = {"Authorization": fake.key, "Accept-Encoding": "gzip"}
        with httpx.stream("GET", url, headers=headers) as response:
            raw = b"".join(response.iter_raw())
        assert response.headers["Content-Encoding"] == "gzip"
        assert fake.counters.bytes_sent == len(raw)
        assert json.loads(gzip.decompress(raw)) == make_event(0, attributes=500)


async def test_the_app_serves_without_a_socket() -> None:
    fake = FakeMisp(Corpus(events=2, attributes=3))
    transport = httpx.ASGITransport(app=fake)
    async with httpx.AsyncClient(transport=transport, base_url="http://misp") as client:
        response = await client.get("/events/view/1", headers={"Authorization": fake.key})
    assert response.json() == make_event(0, attributes=3)


def test_the_fake_runs_as_a_process_for_the_bench() -> None:
    command = [sys.executable, "-m", "tessera.sync.testing.fake_misp", "--port", "0",
               "--events", "3", "--attributes", "5"]  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line.startswith("PORT ")
        url = f"http://127.0.0.1:{int(line.split()[1])}"
        headers = {"Authorization": DEFAULT_KEY}
        entries = httpx.post(f"{url}/events/index", json={"minimal": 1}, headers=headers).json()
        assert len(entries) == 3
        bumped = httpx.post(f"{url}/_fake/bump", json={"first": 1}, headers=headers)
        assert bumped.json() == {"bumped": 1}
        counters = httpx.get(f"{url}/_fake/counters", headers=headers).json()
        assert counters["requests"] == {"events/index": 1}
    finally:
        process.terminate()
        out, _ = process.communicate(timeout=10)
    assert process.returncode == 0
    summary = json.loads(out.split("COUNTERS ", 1)[1])
    assert summary["statuses"] == {"200": 1}


def test_starting_twice_in_a_row_works() -> None:
    fake = FakeMisp(Corpus(events=1, attributes=1))
    for _ in range(2):
        url = fake.start()
        started = time.monotonic()
        assert httpx.get(f"{url}/servers/getVersion",
                         headers={"Authorization": fake.key}).status_code == 200  # fmt: skip
        fake.stop()
        assert time.monotonic() - started < 10
