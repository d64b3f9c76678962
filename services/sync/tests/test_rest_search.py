"""MISP's events/restSearch and attributes/restSearch over HTTP, on events added through
events/add: each filter family chooses what MISP's would, within what the caller may see;
JSON as MISP's JsonExport writes it and CSV as its CsvExport; URL parameters as CakePHP's;
invalid filters refused by name before anything streams; a large answer streamed a page at a
time in bounded memory; and the real PyMISP's ``search()`` against a uvicorn server."""

from __future__ import annotations

import asyncio
import json
import tracemalloc
import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx
from fastapi import FastAPI
from pymisp import MISPAttribute, MISPEvent, PyMISP
from starlette.types import Message

from tessera.sync.search import CSV_DEFAULT_FIELDS, CSV_OBJECT_FIELDS
from tessera.sync.service.search import ATTRIBUTE_BATCH

from .conftest import Member, World
from .test_events_api import add, as_role

T1, T2, T3 = 1_600_000_000, 1_650_000_000, 1_700_000_000
DEFAULT_HEADER = ",".join(
    "date" if f == "timestamp" else f.replace("-", "_")
    for f in (*CSV_DEFAULT_FIELDS, *CSV_OBJECT_FIELDS)
)


async def rest_search(
    world: World, member: Member, scope: str, path: str = "", **filters: Any
) -> httpx.Response:
    return await world.client.post(
        f"/sync/{scope}/restSearch{path}", headers=member.headers, json=filters
    )


async def events(world: World, member: Member, **filters: Any) -> list[dict[str, Any]]:
    """The events of ``events/restSearch``, by id."""
    answer = await rest_search(world, member, "events", **filters)
    assert answer.status_code == 200, answer.text
    return [e["Event"] for e in answer.json()["response"]]


async def attributes(world: World, member: Member, **filters: Any) -> list[dict[str, Any]]:
    answer = await rest_search(world, member, "attributes", **filters)
    assert answer.status_code == 200, answer.text
    found: list[dict[str, Any]] = answer.json()["response"]["Attribute"]
    return found


def infos(found: list[dict[str, Any]]) -> list[str]:
    return [e["info"] for e in found]


def values(found: list[dict[str, Any]]) -> list[str]:
    return [a["value"] for a in found]


def lines(text: str) -> list[list[str]]:
    """MISP's CSV, read naively (no commas inside the values of these tests)."""
    assert text.endswith("\n\n"), repr(text[-20:])
    return [line.split(",") for line in text.rstrip("\n").split("\n") if line]


@dataclass
class Lab:
    """Two events of one organisation, with a tag on one and on an attribute of the other."""

    org: uuid.UUID
    ada: Member
    mark: str
    alpha: dict[str, Any] = field(default_factory=dict)
    beta: dict[str, Any] = field(default_factory=dict)

    @property
    def campaign(self) -> str:
        return f"campaign:{self.mark}"

    @property
    def actor(self) -> str:
        return f"actor:{self.mark}"

    @property
    def domain(self) -> str:
        return f"evil-{self.mark}.example"


async def lab(world: World) -> Lab:
    """alpha (published, 2020-01-01): an ip-dst, a domain and, in a file object, an md5 not
    for IDS; tagged ``campaign``. beta (2022-06-15): a url and an ip-src tagged ``actor``."""
    org = await world.organisation("Search")
    ada = await world.member("Ada", org, role="admin")  # an org admin: may publish
    setup = Lab(org, ada, uuid.uuid4().hex[:10])
    setup.alpha = await add(
        world, ada, info=f"alpha {setup.mark}", date="2020-01-01", timestamp=T1, published=True,
        distribution=1, Tag=[{"name": setup.campaign}],
        Attribute=[
            {"type": "ip-dst", "value": "198.51.100.7", "timestamp": T1},
            {"type": "domain", "value": setup.domain, "timestamp": T2},
        ],
        Object=[{"name": "file", "meta-category": "file", "Attribute": [
            {"type": "md5", "value": "d41d8cd98f00b204e9800998ecf8427e", "to_ids": False,
             "object_relation": "md5", "category": "Payload delivery", "timestamp": T1}]}],
    )  # fmt: skip
    setup.beta = await add(
        world, ada, info=f"beta {setup.mark}", date="2022-06-15", timestamp=T3, distribution=1,
        Attribute=[
            {"type": "url", "value": f"http://{setup.domain}/x", "timestamp": T3},
            {"type": "ip-src", "value": "203.0.113.9", "timestamp": T3, "comment": "egress",
             "Tag": [{"name": setup.actor}]},
        ],
    )  # fmt: skip
    return setup


# --- JSON -------------------------------------------------------------------------------------


async def test_events_are_answered_as_events_view_shows_them(world: World) -> None:
    setup = await lab(world)
    viewed = await world.client.get(
        f"/sync/events/view/{setup.alpha['id']}", headers=setup.ada.headers
    )

    answer = await rest_search(world, setup.ada, "events", value="198.51.100.7",
                               org=str(setup.org))  # fmt: skip
    metadata = await events(world, setup.ada, org=str(setup.org), metadata=1)

    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "application/json"
    assert answer.headers["x-result-count"] == "1"
    assert answer.headers["content-disposition"] == 'attachment; filename="misp.event.list.json"'
    assert answer.json() == {"response": [viewed.json()]}
    assert infos(metadata) == [f"alpha {setup.mark}", f"beta {setup.mark}"]
    assert not {"Attribute", "Object", "EventReport", "ShadowAttribute"} & set(metadata[0])
    assert metadata[0]["Tag"][0]["name"] == setup.campaign


async def test_attributes_are_answered_as_misps_json_export_writes_them(world: World) -> None:
    setup = await lab(world)

    answer = await rest_search(world, setup.ada, "attributes", org=str(setup.org))
    found = answer.json()["response"]["Attribute"]
    inherited = await attributes(world, setup.ada, org=str(setup.org), includeEventTags=1,
                                 includeEventUuid=1, type="ip-dst")  # fmt: skip

    assert answer.status_code == 200, answer.text
    assert answer.headers["x-result-count"] == "5"
    assert "content-disposition" not in answer.headers
    assert values(found) == ["198.51.100.7", setup.domain, "d41d8cd98f00b204e9800998ecf8427e",
                             f"http://{setup.domain}/x", "203.0.113.9"]  # fmt: skip
    ip, _, md5, _, tagged = found
    assert list(ip) == [
        "id", "event_id", "object_id", "object_relation", "category", "type", "to_ids", "uuid",
        "timestamp", "distribution", "sharing_group_id", "comment", "deleted",
        "disable_correlation", "first_seen", "last_seen", "value", "Event",
    ]  # fmt: skip
    assert ip["Event"] == {
        "org_id": setup.alpha["org_id"], "distribution": "1", "publish_timestamp":
        setup.alpha["publish_timestamp"], "id": setup.alpha["id"], "info": setup.alpha["info"],
        "orgc_id": setup.alpha["orgc_id"], "uuid": setup.alpha["uuid"],
    }  # fmt: skip
    assert ip["timestamp"] == str(T1)
    assert md5["Object"] == {"id": md5["object_id"], "distribution": "5", "sharing_group_id": "0"}
    assert md5["to_ids"] is False
    assert [(t["name"], t["local"]) for t in tagged["Tag"]] == [(setup.actor, False)]
    assert set(tagged["Tag"][0]) == {"id", "name", "colour", "numerical_value", "is_galaxy",
                                     "local"}  # fmt: skip
    [shown] = inherited
    assert shown["event_uuid"] == setup.alpha["uuid"]
    assert [(t["name"], t["inherited"]) for t in shown["Tag"]] == [(setup.campaign, 1)]


# --- filters ----------------------------------------------------------------------------------


async def test_value_type_category_and_to_ids_choose_attributes_and_their_events(
    world: World,
) -> None:
    setup = await lab(world)
    mine = {"org": str(setup.org)}

    assert values(await attributes(world, setup.ada, value="198.51.100.7", **mine)) == [
        "198.51.100.7"
    ]
    assert values(await attributes(world, setup.ada, value=f"%{setup.mark}%", **mine)) == [
        setup.domain, f"http://{setup.domain}/x",
    ]  # fmt: skip
    assert values(await attributes(world, setup.ada, type=["ip-dst", "ip-src"], **mine)) == [
        "198.51.100.7", "203.0.113.9",
    ]  # fmt: skip
    assert len(await attributes(world, setup.ada, type="!ip-dst", **mine)) == 4
    assert values(await attributes(world, setup.ada, category="Payload delivery", **mine)) == [
        "d41d8cd98f00b204e9800998ecf8427e"
    ]
    assert len(await attributes(world, setup.ada, to_ids=1, **mine)) == 4
    assert values(await attributes(world, setup.ada, to_ids=0, **mine)) == [
        "d41d8cd98f00b204e9800998ecf8427e"
    ]
    assert infos(await events(world, setup.ada, value="203.0.113.9", **mine)) == [
        f"beta {setup.mark}"
    ]
    assert infos(await events(world, setup.ada, type="md5", **mine)) == [f"alpha {setup.mark}"]
    assert infos(await events(world, setup.ada, category="Network activity", **mine)) == [
        f"alpha {setup.mark}", f"beta {setup.mark}",
    ]  # fmt: skip
    # an event answered shows its attributes (to_ids: only those), not only the matching one
    [alpha] = await events(world, setup.ada, value="198.51.100.7", **mine)
    assert values(alpha["Attribute"]) == ["198.51.100.7", setup.domain]
    [ids_only] = await events(world, setup.ada, type="md5", to_ids=0, **mine)
    assert ids_only["Attribute"] == []
    assert values(ids_only["Object"][0]["Attribute"]) == ["d41d8cd98f00b204e9800998ecf8427e"]


async def test_tags_choose_and_not_tags_exclude(world: World) -> None:
    setup = await lab(world)
    mine = {"org": str(setup.org)}
    alpha, beta = f"alpha {setup.mark}", f"beta {setup.mark}"

    assert infos(await events(world, setup.ada, tags=setup.campaign, **mine)) == [alpha]
    assert infos(await events(world, setup.ada, tags=setup.actor.upper(), **mine)) == [beta]
    assert infos(await events(world, setup.ada, tags=f"%{setup.mark}", **mine)) == [alpha, beta]
    assert infos(await events(world, setup.ada, tags=[f"!{setup.campaign}"], **mine)) == [beta]
    assert infos(await events(world, setup.ada, event_tags=setup.actor, **mine)) == []
    assert infos(await events(world, setup.ada, tags={"AND": [setup.campaign, setup.actor]},
                              **mine)) == []  # fmt: skip
    # an event not tagged with a NOT tag is answered without its attributes carrying it
    [shown] = await events(world, setup.ada, tags=f"!{setup.actor}", value="203.0.113.9", **mine)
    assert values(shown["Attribute"]) == [f"http://{setup.domain}/x"]
    # attributes: their own tags and their event's
    assert len(await attributes(world, setup.ada, tags=setup.campaign, **mine)) == 3
    assert values(await attributes(world, setup.ada, tags=setup.actor, **mine)) == ["203.0.113.9"]
    assert values(await attributes(world, setup.ada, tags=f"!{setup.campaign}&&!{setup.actor}",
                                   **mine)) == [f"http://{setup.domain}/x"]  # fmt: skip


async def test_org_and_eventid_choose_events(world: World) -> None:
    setup = await lab(world)
    other = await world.organisation("Elsewhere")
    name = (await world.query("SELECT name FROM organisations WHERE uuid = $1", setup.org))[0][0]
    alpha, beta = f"alpha {setup.mark}", f"beta {setup.mark}"

    assert infos(await events(world, setup.ada, org=name)) == [alpha, beta]
    assert infos(await events(world, setup.ada, org=str(other), tags=setup.campaign)) == []
    assert infos(await events(world, setup.ada, eventid=setup.beta["id"])) == [beta]
    assert infos(await events(world, setup.ada, eventid=[setup.alpha["uuid"]])) == [alpha]
    assert infos(await events(world, setup.ada, org=str(setup.org),
                              eventid=f"!{setup.alpha['id']}")) == [beta]  # fmt: skip
    assert len(await attributes(world, setup.ada, eventid=setup.alpha["id"])) == 3
    assert values(await attributes(world, setup.ada, uuid=setup.beta["uuid"], type="url")) == [
        f"http://{setup.domain}/x"
    ]


async def test_dates_and_timestamps_bound_events_and_attributes(world: World) -> None:
    setup = await lab(world)
    mine = {"org": str(setup.org)}
    alpha, beta = f"alpha {setup.mark}", f"beta {setup.mark}"

    assert infos(await events(world, setup.ada, date_from="2021-01-01", **mine)) == [beta]
    assert infos(await events(world, setup.ada, **{"from": "2019-01-01", "to": "2020-12-31"},
                              **mine)) == [alpha]  # fmt: skip
    assert infos(await events(world, setup.ada, date=["2022-06-15", "2022-06-15"], **mine)) == [
        beta
    ]
    assert infos(await events(world, setup.ada, timestamp=T3, **mine)) == [beta]
    assert infos(await events(world, setup.ada, timestamp=[T1, T2], **mine)) == [alpha]
    assert infos(await events(world, setup.ada, publish_timestamp="30d", **mine)) == [alpha]
    assert values(await attributes(world, setup.ada, timestamp=[T2, T2], **mine)) == [setup.domain]
    assert len(await attributes(world, setup.ada, event_timestamp=T3, **mine)) == 2
    assert len(await attributes(world, setup.ada, attribute_timestamp=str(T2), **mine)) == 3


async def test_published_chooses_events_and_attributes(world: World) -> None:
    setup = await lab(world)
    mine = {"org": str(setup.org)}

    assert setup.alpha["published"] is True
    assert infos(await events(world, setup.ada, published=1, **mine)) == [f"alpha {setup.mark}"]
    assert infos(await events(world, setup.ada, published=False, **mine)) == [f"beta {setup.mark}"]
    assert len(await attributes(world, setup.ada, published=0, **mine)) == 2
    assert len(await attributes(world, setup.ada, published=[0, 1], **mine)) == 5


async def test_limit_and_page_answer_one_page_and_count_everything(world: World) -> None:
    setup = await lab(world)
    mine = {"org": str(setup.org)}
    third = await add(world, setup.ada, info=f"gamma {setup.mark}")

    first = await rest_search(world, setup.ada, "events", limit=2, page=1, **mine)
    second = await rest_search(world, setup.ada, "events", limit=2, page=2, **mine)
    attribute_page = await attributes(world, setup.ada, limit=2, page=2, **mine)

    assert [e["Event"]["id"] for e in first.json()["response"]] == [
        setup.alpha["id"], setup.beta["id"],
    ]  # fmt: skip
    assert [e["Event"]["id"] for e in second.json()["response"]] == [third["id"]]
    assert first.headers["x-result-count"] == second.headers["x-result-count"] == "3"
    assert values(attribute_page) == ["d41d8cd98f00b204e9800998ecf8427e",
                                      f"http://{setup.domain}/x"]  # fmt: skip


# --- text -------------------------------------------------------------------------------------


async def test_text_answers_each_value_once_a_line(world: World) -> None:
    setup = await lab(world)
    mine = {"org": str(setup.org)}
    await add(world, setup.ada, info=f"again {setup.mark}",
              Attribute=[{"type": "ip-dst", "value": "198.51.100.7"}])  # fmt: skip

    of_attributes = await rest_search(world, setup.ada, "attributes", returnFormat="text", **mine)
    of_events = await rest_search(world, setup.ada, "events", returnFormat="text", **mine)

    assert of_attributes.status_code == 200, of_attributes.text
    assert of_attributes.headers["content-type"].startswith("text/plain")
    assert of_attributes.text.splitlines() == [
        "198.51.100.7", setup.domain, "d41d8cd98f00b204e9800998ecf8427e",
        f"http://{setup.domain}/x", "203.0.113.9",
    ]  # fmt: skip
    assert sorted(of_events.text.splitlines()) == sorted(of_attributes.text.splitlines())
    assert of_events.text.endswith("\n")


# --- CSV --------------------------------------------------------------------------------------


async def test_csv_answers_misps_csv_export_of_attributes(world: World) -> None:
    setup = await lab(world)
    mine = {"org": str(setup.org)}

    answer = await rest_search(world, setup.ada, "attributes", returnFormat="csv", **mine)
    chosen = await rest_search(
        world, setup.ada, "attributes", returnFormat="csv", headerless=1, includeContext=1,
        requested_attributes=["value", "type"], tags=setup.actor, **mine,
    )  # fmt: skip
    of_events = await rest_search(world, setup.ada, "events", returnFormat="csv",
                                  eventid=setup.alpha["id"])  # fmt: skip

    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "text/csv; charset=utf-8"
    assert answer.headers["x-result-count"] == "5"
    header, *rows = lines(answer.text)
    assert ",".join(header) == DEFAULT_HEADER
    assert [row[4] for row in rows] == [
        '"198.51.100.7"', f'"{setup.domain}"', '"d41d8cd98f00b204e9800998ecf8427e"',
        f'"http://{setup.domain}/x"', '"203.0.113.9"',
    ]  # fmt: skip
    ip, _, md5, _, tagged = rows
    assert (ip[1], ip[6], ip[7]) == (setup.alpha["id"], "1", str(T1))
    assert (md5[6], md5[8], md5[11:13]) == ("0", '"md5"', ['"file"', '"file"'])
    assert tagged[9] == f'"{setup.actor}"'
    [row] = lines(chosen.text)
    assert row[:3] == ['"203.0.113.9"', '"ip-src"', f'"beta {setup.mark}"']
    assert row[-2] == '""'  # beta has no tag
    assert of_events.headers["content-disposition"] == (
        f'attachment; filename="misp.event.{setup.alpha["id"]}.csv"'
    )
    _, *event_rows = lines(of_events.text)
    assert [r[4] for r in event_rows] == [
        '"198.51.100.7"', f'"{setup.domain}"', '"d41d8cd98f00b204e9800998ecf8427e"',
    ]  # fmt: skip


# --- the request ------------------------------------------------------------------------------


async def test_url_parameters_are_read_as_cakephps(world: World) -> None:
    setup = await lab(world)
    org = str(setup.org)

    as_csv = await rest_search(world, setup.ada, "attributes", "/csv", type="ip-src", org=org)
    named = await world.client.get(
        f"/sync/attributes/restSearch/json/org:{org}/type:ip-dst", headers=setup.ada.headers
    )
    ordered = await world.client.get(
        f"/sync/events/restSearch/json/198.51.100.7/null/null/{org}", headers=setup.ada.headers
    )
    suffixed = await world.client.post(
        "/sync/events/restSearch.json", headers=setup.ada.headers,
        json={"request": {"org": org, "value": "203.0.113.9"}},
    )  # fmt: skip

    assert as_csv.status_code == 200, as_csv.text
    assert [r[4] for r in lines(as_csv.text)[1:]] == ['"203.0.113.9"']
    assert values(named.json()["response"]["Attribute"]) == ["198.51.100.7"]
    assert [e["Event"]["info"] for e in ordered.json()["response"]] == [f"alpha {setup.mark}"]
    assert [e["Event"]["info"] for e in suffixed.json()["response"]] == [f"beta {setup.mark}"]


async def test_invalid_filters_are_refused_by_name_before_anything_streams(
    world: World,
) -> None:
    ada = await world.member("Ada", await world.organisation("Lab"))

    bad_moment = await rest_search(world, ada, "attributes", timestamp="yesterday-ish")
    bad_format = await rest_search(world, ada, "events", returnFormat="stix2")
    bad_limit = await world.client.get("/sync/events/restSearch/limit:-1", headers=ada.headers)
    no_body = await world.client.post("/sync/events/restSearch", headers=ada.headers)
    no_params = await world.client.get("/sync/attributes/restSearch", headers=ada.headers)
    anonymous = await world.client.post("/sync/events/restSearch", json={"value": "x"})

    assert bad_moment.status_code == 400
    assert bad_moment.json()["errors"][0]["field"] == "timestamp"
    assert bad_moment.json()["name"] == "Invalid timestamp."
    assert bad_format.status_code == 400
    assert bad_format.json()["errors"][0]["field"] == "returnFormat"
    assert bad_limit.status_code == 400
    assert bad_limit.json()["errors"][0]["field"] == "limit"
    assert no_body.status_code == 400
    assert no_body.json()["message"].startswith("Either specify the search terms in the url")
    assert no_params.status_code == 400
    assert no_params.json()["message"].startswith("Restsearch queries using GET")
    assert anonymous.status_code == 403


# --- who sees what ----------------------------------------------------------------------------


async def test_another_organisation_never_sees_what_is_its_organisations_only(
    world: World,
) -> None:
    org = await world.organisation("Lab")
    ada = await world.member("Ada", org)
    eve = await world.member("Eve", await world.organisation("Peer"))
    mark = f"private-{uuid.uuid4().hex[:10]}.example"
    await add(world, ada, info="org only", distribution=0,
              Attribute=[{"type": "domain", "value": mark}])  # fmt: skip
    await add(world, ada, info="shared", distribution=1,
              Attribute=[{"type": "domain", "value": f"in.{mark}", "distribution": 0},
                         {"type": "domain", "value": f"out.{mark}"}])  # fmt: skip

    def searches(member: Member) -> list[Any]:
        return [
            events(world, member, value=f"%{mark}"),
            attributes(world, member, value=f"%{mark}"),
            rest_search(world, member, "attributes", value=f"%{mark}", returnFormat="csv"),
            rest_search(world, member, "events", org=str(org), returnFormat="csv"),
        ]

    mine_events, mine, mine_csv, mine_event_csv = await asyncio.gather(*searches(ada))
    theirs_events, theirs, theirs_csv, theirs_event_csv = await asyncio.gather(*searches(eve))

    assert infos(mine_events) == ["org only", "shared"]
    assert sorted(values(mine)) == sorted([mark, f"in.{mark}", f"out.{mark}"])
    assert (len(lines(mine_csv.text)), len(lines(mine_event_csv.text))) == (4, 4)
    assert infos(theirs_events) == ["shared"]
    assert values(theirs_events[0]["Attribute"]) == [f"out.{mark}"]
    assert values(theirs) == [f"out.{mark}"]
    assert theirs_csv.headers["x-result-count"] == "1"
    assert [r[4] for r in lines(theirs_csv.text)[1:]] == [f'"out.{mark}"']
    assert [r[4] for r in lines(theirs_event_csv.text)[1:]] == [f'"out.{mark}"']
    assert await events(world, eve, value=f"in.{mark}") == []


# --- streaming --------------------------------------------------------------------------------


@dataclass
class Streamed:
    status: int
    headers: dict[str, str]
    parts: list[int]
    """the size of each body part sent"""
    peak: int
    """the most memory Python held at once meanwhile (tracemalloc), above what it held before"""


async def streamed(app: FastAPI, member: Member, path: str, body: dict[str, Any]) -> Streamed:
    """The app driven as an ASGI server drives it, each part of the body counted and dropped
    (an HTTP client would keep them), memory traced meanwhile."""
    payload = json.dumps(body).encode()
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
        "scheme": "http", "path": path, "raw_path": path.encode(), "root_path": "",
        "query_string": b"", "client": ("127.0.0.1", 50000), "server": ("sync", 80),
        "headers": [(b"host", b"sync"), (b"content-type", b"application/json"),
                    (b"content-length", str(len(payload)).encode()),
                    (b"authorization", member.key.encode())],
    }  # fmt: skip
    delivered = False
    never = asyncio.Event()
    result = Streamed(0, {}, [], 0)

    async def receive() -> Message:
        nonlocal delivered
        if not delivered:
            delivered = True
            return {"type": "http.request", "body": payload, "more_body": False}
        await never.wait()  # the client stays connected
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        if message["type"] == "http.response.start":
            result.status = message["status"]
            result.headers = {k.decode(): v.decode() for k, v in message["headers"]}
        elif message.get("body"):
            result.parts.append(len(message["body"]))

    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        await app(scope, receive, send)
        result.peak = tracemalloc.get_traced_memory()[1] - before
    finally:
        tracemalloc.stop()
    return result


async def test_a_large_answer_streams_a_page_at_a_time_in_bounded_memory(world: World) -> None:
    org = await world.organisation("Bulk")
    ada = await world.member("Ada", org)
    padding = "x" * 1000  # each attribute ~1.6 KB of JSON: ~5 MB in all
    for part in range(3):
        await add(world, ada, info=f"bulk {part}", Attribute=[
            {"type": "ip-dst", "value": f"10.{part}.{n // 250}.{n % 250}", "comment": padding}
            for n in range(1000)
        ])  # fmt: skip
    wanted = {"org": str(org), "type": "ip-dst"}

    one_page = await streamed(world.app, ada, "/sync/attributes/restSearch",
                              {**wanted, "limit": ATTRIBUTE_BATCH})  # fmt: skip
    everything = await streamed(world.app, ada, "/sync/attributes/restSearch", wanted)
    as_csv = await streamed(world.app, ada, "/sync/attributes/restSearch",
                            {**wanted, "returnFormat": "csv"})  # fmt: skip
    complete = await attributes(world, ada, **wanted)

    assert everything.status == 200
    assert everything.headers["x-result-count"] == "3000"
    assert "content-length" not in everything.headers
    # the header, six pages of 500 attributes, the footer: each sent once read
    assert len(everything.parts) == 3000 // ATTRIBUTE_BATCH + 2
    assert len(as_csv.parts) == 3000 // ATTRIBUTE_BATCH + 2
    assert sum(everything.parts) > 4_500_000
    # six times the data in no more memory than one page needs
    assert everything.peak < 2 * one_page.peak, (everything.peak, one_page.peak)
    assert as_csv.peak < 2 * one_page.peak, (as_csv.peak, one_page.peak)
    assert len(complete) == 3000
    assert len({a["uuid"] for a in complete}) == 3000
    assert {a["comment"] for a in complete} == {padding}

    streamed_events = await streamed(world.app, ada, "/sync/events/restSearch", {"org": str(org)})
    assert streamed_events.headers["x-result-count"] == "3"
    assert len(streamed_events.parts) == 3 + 2  # one part per event


# --- PyMISP -----------------------------------------------------------------------------------


def _pymisp_searches(url: str, key: str, setup: Lab) -> None:
    misp = PyMISP(url, key, ssl=False, timeout=30)
    org = str(setup.org)

    found: Any = misp.search(controller="events", value=setup.domain, org=org)
    assert isinstance(found, list), found
    assert [e["Event"]["uuid"] for e in found] == [setup.alpha["uuid"]]

    as_events = misp.search(controller="events", value=setup.domain, pythonify=True)
    assert [e.uuid for e in as_events if isinstance(e, MISPEvent)] == [setup.alpha["uuid"]]

    csv: Any = misp.search(controller="attributes", type_attribute="ip-src", org=org,
                      return_format="csv")  # fmt: skip
    assert isinstance(csv, str), csv
    header, *rows = csv.strip().split("\n")
    assert header == DEFAULT_HEADER
    assert [row.split(",")[4] for row in rows] == ['"203.0.113.9"']

    tagged: Any = misp.tag(setup.alpha["uuid"], "tlp:red")
    assert "successfully" in tagged["message"].lower(), tagged
    untagged: Any = misp.search(tags=["!tlp:red"], org=org)
    assert [e["Event"]["uuid"] for e in untagged] == [setup.beta["uuid"]]
    red = misp.search(controller="attributes", tags=["tlp:red"], org=org, pythonify=True)
    assert len(red) == 3

    pythonic: Any = misp.search(controller="attributes", value="203.0.113.9", org=org,
                           include_event_tags=True, pythonify=True)  # fmt: skip
    [attribute] = pythonic
    assert isinstance(attribute, MISPAttribute)
    assert attribute.Event.uuid == setup.beta["uuid"]
    assert {t.name for t in attribute.tags} == {setup.actor}


async def test_pymisp_searches_events_and_attributes_unchanged(world: World, served: str) -> None:
    setup = await lab(world)

    await asyncio.to_thread(_pymisp_searches, served, setup.ada.key, setup)


async def test_a_sync_user_sees_no_local_tag(world: World) -> None:
    setup = await lab(world)
    peer = await world.member("Peer", await world.organisation("Peer"))
    as_role(world, peer, "sync_user")
    local = f"local:{setup.mark}"
    attached = await world.client.post(
        "/sync/tags/attachTagToObject", headers=setup.ada.headers,
        json={"uuid": setup.beta["uuid"], "tag": local, "local": 1},
    )  # fmt: skip
    assert attached.status_code == 200, attached.text
    mine = {"org": str(setup.org), "includeEventTags": 1, "type": "url"}

    [seen] = await attributes(world, setup.ada, **mine)
    [synced] = await attributes(world, peer, **mine)

    assert [t["name"] for t in seen["Tag"]] == [local]
    assert "Tag" not in synced


async def test_comment_value1_value2_and_sharinggroup_filter(world: World) -> None:
    setup = await lab(world)
    mine = {"org": str(setup.org)}
    await add(world, setup.ada, info=f"pair {setup.mark}", Attribute=[
        {"type": "ip-dst|port", "value": "192.0.2.44|8443", "comment": f"c2 {setup.mark}"},
    ])  # fmt: skip

    by_comment = await attributes(world, setup.ada, comment="egress", **mine)
    by_pattern = await attributes(world, setup.ada, comment=f"%{setup.mark}", **mine)
    by_value2 = await attributes(world, setup.ada, value2="8443", **mine)
    by_value1 = await attributes(world, setup.ada, value1="192.0.2.44", **mine)
    not_value1 = await attributes(world, setup.ada, value1="8443", **mine)
    events_by_comment = await rest_search(world, setup.ada, "events", comment="egress", **mine)
    no_group = await rest_search(world, setup.ada, "events", sharinggroup=[999999], **mine)
    bad_group = await rest_search(world, setup.ada, "events", sharinggroup="x", **mine)

    assert values(by_comment) == ["203.0.113.9"]
    assert values(by_pattern) == values(by_value2) == values(by_value1) == ["192.0.2.44|8443"]
    assert values(not_value1) == []
    assert [e["Event"]["id"] for e in events_by_comment.json()["response"]] == [setup.beta["id"]]
    assert no_group.json()["response"] == []
    assert bad_group.status_code == 400
    assert bad_group.json()["errors"][0]["field"] == "sharinggroup"


async def test_searchall_finds_info_values_comments_and_tags(world: World) -> None:
    setup = await lab(world)
    mine = {"org": str(setup.org)}

    by_info = await rest_search(world, setup.ada, "events", searchall=f"%beta {setup.mark}", **mine)
    by_comment = await rest_search(world, setup.ada, "events", searchall="egress", **mine)
    by_value = await rest_search(world, setup.ada, "events", searchall="198.51.100.7", **mine)
    by_tag = await rest_search(world, setup.ada, "events", searchall=setup.campaign, **mine)
    attributes_by_tag = await attributes(world, setup.ada, searchall=setup.actor, **mine)
    nothing = await rest_search(world, setup.ada, "events", searchall="nowhere at all", **mine)

    def ids(answer: Any) -> list[str]:
        assert answer.status_code == 200, answer.text
        return [e["Event"]["id"] for e in answer.json()["response"]]

    assert ids(by_info) == ids(by_comment) == [setup.beta["id"]]
    assert ids(by_value) == ids(by_tag) == [setup.alpha["id"]]
    assert values(attributes_by_tag) == ["203.0.113.9"]  # the attribute tagged actor
    assert ids(nothing) == []


async def test_first_seen_and_last_seen_bound_the_attributes(world: World) -> None:
    setup = await lab(world)
    mine = {"org": str(setup.org)}
    await add(world, setup.ada, info=f"seen {setup.mark}", Attribute=[
        {"type": "ip-dst", "value": "192.0.2.61", "first_seen": "2021-03-01T00:00:00+00:00",
         "last_seen": "2021-03-10T00:00:00+00:00"},
        {"type": "ip-dst", "value": "192.0.2.62", "first_seen": "2023-01-01T00:00:00+00:00",
         "last_seen": "2023-02-01T00:00:00+00:00"},
    ])  # fmt: skip

    since_2022 = await attributes(world, setup.ada, first_seen="2022-01-01", **mine)
    until_2022 = await attributes(world, setup.ada, last_seen="2022-01-01", **mine)
    in_2021 = await attributes(world, setup.ada, first_seen=["2021-01-01", "2021-12-31"], **mine)
    bad = await rest_search(world, setup.ada, "attributes", first_seen="someday", **mine)

    assert values(since_2022) == ["192.0.2.62"]
    assert values(until_2022) == ["192.0.2.61"]
    assert values(in_2021) == ["192.0.2.61"]
    assert bad.status_code == 400
    assert bad.json()["errors"][0]["field"] == "first_seen"
