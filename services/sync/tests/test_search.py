"""MISP's restSearch filters: every loose form a client sends is read into one meaning,
invalid values are refused by name, and each filter selects exactly the expected rows of a
small world (three organisations, five events, eleven attributes, five tags) in a schema of
its own, within what the viewer may see; then the CSV export's header and lines."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from typing import Any, cast

import asyncpg
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from tessera.common.testing import run_sync
from tessera.sync import models
from tessera.sync.search import (
    FilterError,
    Filters,
    Scope,
    Span,
    Terms,
    attributes_query,
    csv_header,
    csv_row,
    events_query,
    parse_filters,
    render_csv,
)
from tessera.sync.viewer import MispRole, Viewer

POSTGRES = "postgresql://postgres@127.0.0.1:5432/postgres"
T0 = 1_700_000_000
NOW = datetime.fromtimestamp(T0 + 500, UTC)

# --- the world ----------------------------------------------------------------------------------

ALPHA, BETA, GAMMA = 1, 2, 3
ORG_UUID = {o: uuid.UUID(f"0000000{o}-0000-4000-8000-000000000000") for o in (1, 2, 3)}
ORG_NAME = {ALPHA: "Alpha CERT", BETA: "Beta Corp", GAMMA: "Gamma_Labs"}
WHITE, AMBER, EMOTET, OSINT, UNUSED = 1, 2, 3, 4, 5
TAGS = {
    WHITE: "tlp:white",
    AMBER: "tlp:amber",
    EMOTET: "malware:emotet",
    OSINT: "type:OSINT",
    UNUSED: "tlp:red",
}


def ev(n: int) -> uuid.UUID:
    return uuid.UUID(f"e0000000-0000-4000-8000-{n:012d}")


def at(n: int) -> uuid.UUID:
    return uuid.UUID(f"a0000000-0000-4000-8000-{n:012d}")


#: id: holder, creator, date, info, distribution, published, timestamp, publish_timestamp, threat
EVENTS = {
    1: (ALPHA, ALPHA, "2024-01-10", "Emotet wave", 3, True, T0 + 100, T0 + 100, 1),
    2: (ALPHA, BETA, "2024-02-01", "Phishing campaign", 1, False, T0 + 200, 0, 2),
    3: (ALPHA, ALPHA, "2024-03-05", "Internal only", 0, True, T0 + 300, T0 + 300, 3),
    4: (BETA, BETA, "2024-03-20", "Beta report 50% off_scam", 3, True, T0 + 400, T0 + 400, 4),
    5: (GAMMA, GAMMA, "2023-12-31", "Old and empty", 3, False, T0 - 1000, 0, 4),
}
#: id: event, object, category, type, value1, value2, to_ids, distribution, deleted, relation
NET, PAYLOAD = "Network activity", "Payload delivery"
MD5_A = "0cc175b9c0f1b6a831c399e269772661"
ATTRIBUTES = {
    1: (1, None, NET, "ip-dst", "203.0.113.5", "", True, 5, False, None),
    2: (1, None, NET, "domain", "evil.example.com", "", True, 5, False, None),
    3: (1, 1, PAYLOAD, "md5", "d41d8cd98f00b204e9800998ecf8427e", "", True, 5, False, "md5"),
    4: (1, None, PAYLOAD, "email-src", "bad@example.com", "", False, 0, False, None),
    5: (2, None, NET, "url", "http://example.com/a_b%20c", "", False, 5, False, None),
    6: (2, None, NET, "ip-dst", "2001:db8::1", "", True, 5, True, None),
    7: (3, None, NET, "ip-dst", "203.0.113.5", "", True, 5, False, None),
    8: (4, None, NET, "domain", "evil.example.net", "", True, 5, False, None),
    9: (4, None, PAYLOAD, "email", "x@example.org", "", False, 5, False, None),
    10: (4, None, PAYLOAD, "filename|md5", "a.exe", MD5_A, False, 5, False, None),
    11: (4, 2, "Other", "text", "secret-in-object", "", False, 5, False, "text"),
}
#: id: event, name, meta-category, distribution (object 2 is kept to its organisation, BETA)
OBJECTS = {1: (1, "file", "file", 5), 2: (4, "note", "misc", 0)}
EVENT_TAGS = [(1, WHITE), (1, EMOTET), (2, AMBER), (3, AMBER), (5, OSINT)]
ATTRIBUTE_TAGS = [(1, OSINT), (8, EMOTET), (3, WHITE)]


def viewer(org: int, role: MispRole = MispRole.user) -> Viewer:
    return Viewer(
        user_id=10 + org,
        user_uuid=uuid.uuid4(),
        email=f"user@org{org}.example",
        org_id=org,
        org_uuid=ORG_UUID[org],
        org_name=ORG_NAME[org],
        role=role,
    )


VIEWERS = {"alpha": viewer(ALPHA), "beta": viewer(BETA), "admin": viewer(GAMMA, MispRole.admin)}


def rows() -> list[tuple[Any, list[dict[str, Any]]]]:
    moment = datetime.fromtimestamp(T0, UTC)
    orgs = [
        {"id": o, "uuid": ORG_UUID[o], "name": n, "created_at": moment, "updated_at": moment}
        for o, n in ORG_NAME.items()
    ]
    events = [
        {"id": i, "uuid": ev(i), "org_id": org, "orgc_id": orgc, "date": day, "info": info,
         "distribution": dist, "published": published, "timestamp": ts,
         "publish_timestamp": pts, "threat_level_id": threat}
        for i, (org, orgc, day, info, dist, published, ts, pts, threat) in EVENTS.items()
    ]  # fmt: skip
    objects = [
        {"id": i, "uuid": uuid.uuid4(), "event_id": e, "name": name, "meta_category": meta,
         "distribution": dist, "timestamp": T0}
        for i, (e, name, meta, dist) in OBJECTS.items()
    ]  # fmt: skip
    attributes = [
        {"id": i, "uuid": at(i), "event_id": e, "object_id": o, "category": cat, "type": type_,
         "value1": v1, "value2": v2, "to_ids": ids, "distribution": dist, "deleted": deleted,
         "object_relation": rel, "timestamp": EVENTS[e][6] + i, "comment": f'say "{i}"'}
        for i, (e, o, cat, type_, v1, v2, ids, dist, deleted, rel) in ATTRIBUTES.items()
    ]  # fmt: skip
    tags = [{"id": i, "name": name} for i, name in TAGS.items()]
    event_tags = [{"event_id": e, "tag_id": t} for e, t in EVENT_TAGS]
    attribute_tags = [
        {"attribute_id": a, "event_id": ATTRIBUTES[a][0], "tag_id": t} for a, t in ATTRIBUTE_TAGS
    ]
    return [
        (models.Organisation, orgs),
        (models.Event, events),
        (models.MispObject, objects),
        (models.Attribute, attributes),
        (models.Tag, tags),
        (models.EventTag, event_tags),
        (models.AttributeTag, attribute_tags),
    ]


async def create_world(name: str) -> None:
    engine = create_async_engine(
        POSTGRES.replace("postgresql://", "postgresql+asyncpg://"),
        execution_options={"schema_translate_map": {"sync": name}},
    )
    try:
        async with engine.begin() as conn:
            await conn.execute(text(f"CREATE SCHEMA {name}"))
            await conn.run_sync(models.metadata.create_all)
            for model, values in rows():
                await conn.execute(model.__table__.insert(), values)
    finally:
        await engine.dispose()


async def drop_world(name: str) -> None:
    conn = await asyncpg.connect(POSTGRES, timeout=5)
    try:
        await conn.execute(f"DROP SCHEMA IF EXISTS {name} CASCADE")
    finally:
        await conn.close()


@pytest.fixture(scope="module")
def schema() -> Iterator[str]:
    """The world in a schema of its own, built once from the service's metadata (the tests
    only read it), and dropped afterwards."""
    name = f"search_{uuid.uuid4().hex[:12]}"
    try:
        run_sync(create_world(name))
    except (OSError, asyncpg.PostgresError) as exc:
        run_sync(drop_world(name))
        pytest.skip(f"no PostgreSQL at {POSTGRES}: {exc}")
    try:
        yield name
    finally:
        run_sync(drop_world(name))


@pytest.fixture
async def db(schema: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(POSTGRES, timeout=5)
    try:
        yield conn
    finally:
        await conn.close()


async def found(
    conn: asyncpg.Connection, schema: str, body: dict[str, Any], who: str, scope: Scope
) -> list[int]:
    f = parse_filters(body, scope=scope, now=NOW)
    query = events_query if scope == "events" else attributes_query
    sql, params = query(f, VIEWERS[who], schema=schema)
    return [r[0] for r in await conn.fetch(sql, *params)]


# --- reading the forms --------------------------------------------------------------------------


def events(body: dict[str, Any]) -> Any:
    return parse_filters(body, scope="events", now=NOW)


def attributes(body: dict[str, Any]) -> Any:
    return parse_filters(body, scope="attributes", now=NOW)


def test_a_value_or_a_list_of_values_is_an_or() -> None:
    assert events({"value": "1.2.3.4"}).value == Terms(any_of=("1.2.3.4",))
    assert events({"type": ["ip-src", "ip-dst"]}).type == Terms(any_of=("ip-src", "ip-dst"))
    assert events({"eventid": 7}).eventid == Terms(any_of=(7,))


def test_an_or_and_not_dict_keeps_its_groups_literally() -> None:
    tags = events({"tags": {"OR": ["a", "b"], "AND": "c", "NOT": ["!d"]}}).tags
    assert tags == Terms(any_of=("a", "b"), all_of=("c",), none_of=("!d",))


def test_a_bang_means_not_in_a_string_or_a_list() -> None:
    assert events({"tags": "!tlp:red"}).tags == Terms(none_of=("tlp:red",))
    assert events({"tags": ["tlp:white", "!tlp:red"]}).tags == Terms(
        any_of=("tlp:white",), none_of=("tlp:red",)
    )


def test_double_ampersands_and_double_pipes_split_a_string() -> None:
    assert events({"tags": "a&&!b"}).tags == Terms(any_of=("a",), none_of=("b",))
    assert events({"value": " x || y "}).value == Terms(any_of=("x", "y"))


def test_a_body_may_come_wrapped_in_request() -> None:
    assert events({"request": {"value": "x"}}).value == Terms(any_of=("x",))


def test_wildcards_are_kept_for_the_query_and_ipv6_is_compressed() -> None:
    assert attributes({"value": "%.example.com"}).value == Terms(any_of=("%.example.com",))
    assert attributes({"value": "2001:0db8:0000::0001"}).value == Terms(any_of=("2001:db8::1",))


def test_tags_and_orgs_are_names_ids_or_uuids() -> None:
    assert events({"tags": ["12", "tlp:red"]}).tags == Terms(any_of=(12, "tlp:red"))
    org = ORG_UUID[BETA]
    assert events({"org": ["3", str(org), "CIRCL"]}).org == Terms(any_of=(3, org, "CIRCL"))


def test_eventid_takes_ids_and_uuids_and_all_means_any() -> None:
    assert events({"eventid": ["1", str(ev(2))]}).eventid == Terms(any_of=(1, ev(2)))
    assert events({"eventid": "all"}).eventid is None


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        pytest.param(1, True, id="1"),
        pytest.param("1", True, id="'1'"),
        pytest.param(True, True, id="true"),
        pytest.param("true", True, id="'true'"),
        pytest.param(0, False, id="0"),
        pytest.param("0", False, id="'0'"),
        pytest.param(False, False, id="false"),
    ],
)
def test_booleans_come_as_numbers_strings_or_json(given: Any, expected: bool) -> None:
    f = attributes({"to_ids": given, "published": given, "includeContext": given})
    assert f.to_ids == frozenset({expected})
    assert f.published == frozenset({expected})
    assert f.include_context is expected


def test_both_states_lift_a_boolean_filter_and_words_mean_what_misp_says() -> None:
    assert attributes({"to_ids": [0, 1]}).to_ids == frozenset({False, True})
    assert attributes({"to_ids": "exclude"}).to_ids == frozenset({False})
    assert attributes({"deleted": "only"}).deleted == frozenset({True})
    assert attributes({}).deleted is None


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        pytest.param(T0, Span(T0), id="timestamp"),
        pytest.param(str(T0), Span(T0), id="timestamp as a string"),
        pytest.param(float(T0) + 0.5, Span(T0), id="PyMISP's float"),
        pytest.param("7d", Span(T0 + 500 - 7 * 86400), id="days"),
        pytest.param("12h", Span(T0 + 500 - 12 * 3600), id="hours"),
        pytest.param("30m", Span(T0 + 500 - 1800), id="minutes"),
        pytest.param("2024-01-02", Span(1704153600), id="a day"),
        pytest.param("2024-01-02T01:00:00+01:00", Span(1704153600), id="ISO 8601"),
        pytest.param(["1d", "2d"], Span(T0 + 500 - 2 * 86400, T0 + 500 - 86400), id="range"),
        pytest.param([0, T0], Span(None, T0), id="range without a start"),
    ],
)
def test_moments_and_ranges(given: Any, expected: Span) -> None:
    assert events({"timestamp": given}).event_timestamp == expected


def test_timestamp_is_the_event_s_or_the_attribute_s_by_scope() -> None:
    assert events({"timestamp": T0}).event_timestamp == Span(T0)
    assert attributes({"timestamp": T0}).attribute_timestamp == Span(T0)
    assert attributes({"timestamp": T0}).event_timestamp is None
    assert attributes({"event_timestamp": T0}).event_timestamp == Span(T0)


def test_last_and_publish_timestamp_both_bound_the_publication() -> None:
    f = events({"last": T0, "publish_timestamp": [T0 - 10, T0 + 10]})
    assert f.publish_timestamp == Span(T0, T0 + 10)


def test_event_dates_from_days_timestamps_relative_times_and_date_ranges() -> None:
    f = events({"from": "2024-01-01", "date_to": 1706745600})
    assert (f.date_from, f.date_to) == ("2024-01-01", "2024-02-01")
    f = events({"date": ["2024-03-01", "2024-03-31"]})
    assert (f.date_from, f.date_to) == ("2024-03-01", "2024-03-31")
    assert events({"from": "1d"}).date_from == "2023-11-13"


def test_pagination_counts_pages_from_one_and_zero_means_no_limit() -> None:
    f = events({"limit": "10", "page": 3})
    assert (f.limit, f.page, f.offset) == (10, 3, 20)
    assert events({"limit": 5}).offset == 0
    assert events({"limit": 0, "page": 2}).limit is None
    assert events({"page": 2}).page is None


def test_csv_options_and_format() -> None:
    f = attributes(
        {
            "returnFormat": "CSV",
            "requested_attributes": "uuid, value",
            "includeContext": 1,
            "headerless": "1",
        }
    )
    assert f.return_format == "csv"
    assert f.requested_attributes == ("uuid", "value")
    assert f.include_context
    assert f.headerless
    assert attributes({"returnFormat": "download"}).return_format == "json"


def test_metadata_is_read_in_the_events_scope_only() -> None:
    assert events({"metadata": 1}).metadata is True
    assert attributes({"metadata": 1}).metadata is False


def test_unknown_parameters_are_ignored_and_ignored_ones_are_named() -> None:
    f = events(
        {"includeSightings": 1, "pony": "yes", "withAttachments": 1, "enforceWarninglist": "1"}
    )
    assert f == Filters(scope="events", ignored=("withAttachments", "enforceWarninglist"))


def test_what_pymisp_sends_by_default_filters_nothing_it_did_not_ask_for() -> None:
    # PyMISP.search(controller="events", value="x", date_from=date(2024, 1, 1)) sends this
    body = {
        "returnFormat": "json", "value": "x", "from": 1704153599.999999, "withAttachments": 0,
        "metadata": 0, "enforceWarninglist": 0, "includeEventUuid": 0, "includeEventTags": 0,
        "sgReferenceOnly": 0, "includeContext": 0, "headerless": 0, "includeSightings": 0,
        "includeDecayScore": 0, "includeCorrelations": 0, "excludeDecayed": 0,
    }  # fmt: skip
    f = events(body)
    assert f == Filters(scope="events", value=Terms(any_of=("x",)), date_from="2024-01-01")


@pytest.mark.parametrize(
    ("body", "parameter"),
    [
        ({"returnFormat": "stix2"}, "returnFormat"),
        ({"limit": "ten"}, "limit"),
        ({"limit": -1}, "limit"),
        ({"page": 0}, "page"),
        ({"to_ids": "maybe"}, "to_ids"),
        ({"published": 2}, "published"),
        ({"deleted": "sometimes"}, "deleted"),
        ({"timestamp": "yesterday"}, "timestamp"),
        ({"timestamp": [1, 2, 3]}, "timestamp"),
        ({"last": "7x"}, "last"),
        ({"from": "2024-13-45"}, "from"),
        ({"date": "soon"}, "date"),
        ({"eventid": "abc"}, "eventid"),
        ({"uuid": "not-a-uuid"}, "uuid"),
        ({"tags": {"XOR": ["a"]}}, "tags"),
        ({"value": [{"nested": 1}]}, "value"),
        ({"threat_level_id": 7}, "threat_level_id"),
        ({"limit": 2**40}, "limit"),
        ({"timestamp": 1e20}, "timestamp"),
        ({"from": float("nan")}, "from"),
        ({"eventid": str(2**64)}, "eventid"),
        ({"includeContext": "yes"}, "includeContext"),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_invalid_values_are_refused_by_name(body: dict[str, Any], parameter: str) -> None:
    with pytest.raises(FilterError) as caught:
        events(body)
    assert caught.value.parameter == parameter
    assert parameter in str(caught.value)


def test_a_scope_other_than_events_or_attributes_is_refused() -> None:
    with pytest.raises(ValueError, match="scope"):
        parse_filters({}, scope=cast(Any, "objects"))


# --- the queries' shape -------------------------------------------------------------------------


def test_values_never_reach_the_sql_text() -> None:
    hostile = "x'); DROP TABLE events; --"
    body = {"value": hostile, "tags": hostile, "org": hostile, "eventinfo": f"%{hostile}"}
    for sql, params in (
        events_query(events(body), VIEWERS["beta"]),
        attributes_query(attributes(body), VIEWERS["beta"]),
    ):
        assert "DROP" not in sql
        assert [hostile] in params


def test_placeholders_start_at_first_param_and_the_schema_must_be_an_identifier() -> None:
    sql, params = events_query(events({"value": "x"}), VIEWERS["beta"], first_param=5)
    used = {int(n) for n in re.findall(r"\$([0-9]+)", sql)}
    assert used == set(range(5, 5 + len(params)))
    with pytest.raises(ValueError, match="identifier"):
        events_query(events({}), VIEWERS["beta"], schema="x; DROP")


def test_queries_refuse_filters_of_the_other_scope() -> None:
    with pytest.raises(ValueError, match="events scope"):
        events_query(attributes({}), VIEWERS["beta"])
    with pytest.raises(ValueError, match="attributes scope"):
        attributes_query(events({}), VIEWERS["beta"])


# --- what each filter selects -------------------------------------------------------------------

ALL_EVENTS = {1, 2, 3, 4, 5}

#: body, viewer, the events found
Case = tuple[dict[str, Any], str, set[int]]
EVENT_CASES: list[Case] = [
    ({}, "alpha", ALL_EVENTS),
    ({}, "beta", {1, 2, 4, 5}),
    ({"value": "203.0.113.5"}, "alpha", {1, 3}),
    ({"value": "203.0.113.5"}, "beta", {1}),
    ({"value": "%.example.com"}, "alpha", {1}),
    ({"value": "%example%"}, "alpha", {1, 2, 4}),
    ({"value": "%example%"}, "beta", {1, 2, 4}),
    ({"value": "0cc175b9c0f1b6a831c399e269772661"}, "alpha", {4}),
    ({"value": "2001:0db8::0001"}, "alpha", set()),
    ({"value": "2001:0db8::0001", "deleted": [0, 1]}, "alpha", {2}),
    ({"value": "!203.0.113.5"}, "alpha", {1, 2, 4}),
    ({"value": {"AND": ["203.0.113.5", "evil.example.com"]}}, "alpha", {1}),
    ({"type": "ip-dst"}, "alpha", {1, 3}),
    ({"type": "email-src"}, "alpha", {1, 4}),
    ({"type": "email-src"}, "beta", {4}),
    ({"category": "Other"}, "alpha", set()),
    ({"category": "Other"}, "beta", {4}),
    ({"object_relation": "md5"}, "alpha", {1}),
    ({"to_ids": 0}, "alpha", {1, 2, 4}),
    ({"to_ids": 0}, "beta", {2, 4}),
    ({"type": "url", "to_ids": 1}, "alpha", set()),
    ({"type": "ip-dst", "value": "evil.example.com"}, "alpha", set()),
    ({"deleted": 1}, "alpha", {2}),
    ({"tags": "tlp:amber"}, "alpha", {2, 3}),
    ({"tags": "TLP:AMBER"}, "beta", {2}),
    ({"tags": "tlp:%"}, "alpha", {1, 2, 3}),
    ({"tags": [AMBER]}, "alpha", {2, 3}),
    ({"tags": "!tlp:amber"}, "alpha", {1, 4, 5}),
    ({"tags": {"NOT": ["tlp:amber", "type:OSINT"]}}, "alpha", {1, 4}),
    ({"tags": ["tlp:white", "tlp:amber"]}, "alpha", {1, 2, 3}),
    ({"tags": {"AND": ["tlp:white", "malware:emotet"]}}, "alpha", {1}),
    ({"tags": {"AND": ["tlp:amber", "malware:emotet"]}}, "alpha", set()),
    ({"tags": "malware:emotet"}, "alpha", {1, 4}),
    ({"tags": "type:OSINT"}, "alpha", {1, 5}),
    ({"tags": "tlp:%&&!malware:emotet"}, "alpha", {2, 3}),
    ({"tags": "tlp:red"}, "alpha", set()),
    ({"tags": "no such tag"}, "alpha", set()),
    ({"tag": "tlp:amber"}, "alpha", {2, 3}),
    ({"event_tags": "malware:emotet"}, "alpha", {1}),
    ({"org": "Beta Corp"}, "alpha", {2, 4}),
    ({"org": "beta corp"}, "alpha", {2, 4}),
    ({"org": BETA}, "alpha", {2, 4}),
    ({"org": str(ORG_UUID[BETA])}, "alpha", {2, 4}),
    ({"org": "!Beta Corp"}, "alpha", {1, 3, 5}),
    ({"org": "beta%"}, "alpha", {2, 4}),
    ({"org": "Gamma_%"}, "alpha", {5}),
    ({"org": "G_mma%"}, "alpha", set()),
    ({"eventid": 3}, "alpha", {3}),
    ({"eventid": 3}, "beta", set()),
    ({"eventid": [1, 4]}, "alpha", {1, 4}),
    ({"eventid": "!1"}, "alpha", {2, 3, 4, 5}),
    ({"eventid": str(ev(2))}, "alpha", {2}),
    ({"uuid": str(ev(4))}, "alpha", {4}),
    ({"uuid": str(at(1))}, "alpha", {1}),
    ({"uuid": str(at(4))}, "beta", set()),
    ({"uuid": f"!{ev(4)}"}, "alpha", {1, 2, 3, 5}),
    ({"eventinfo": "%campaign"}, "alpha", {2}),
    ({"eventinfo": "Beta report 50% off_scam"}, "alpha", {4}),
    ({"threat_level_id": [1, 2]}, "alpha", {1, 2}),
    ({"published": 1}, "alpha", {1, 3, 4}),
    ({"published": False}, "alpha", {2, 5}),
    ({"published": [0, 1]}, "alpha", ALL_EVENTS),
    ({"from": "2024-02-01"}, "alpha", {2, 3, 4}),
    ({"to": "2024-02-01"}, "alpha", {1, 2, 5}),
    ({"date_from": "2024-01-01", "date_to": "2024-02-28"}, "alpha", {1, 2}),
    ({"date": ["2024-03-01", "2024-03-31"]}, "alpha", {3, 4}),
    ({"timestamp": T0 + 250}, "alpha", {3, 4}),
    ({"timestamp": [T0 + 350, T0 + 150]}, "alpha", {2, 3}),
    ({"timestamp": "5m"}, "alpha", {2, 3, 4}),
    ({"event_timestamp": "5m"}, "beta", {2, 4}),
    ({"publish_timestamp": T0 + 300}, "alpha", {3, 4}),
    ({"last": "200s"}, "alpha", {3, 4}),
    ({"value": "203.0.113.5"}, "admin", {1, 3}),
    ({"category": "Other"}, "admin", {4}),
]


def case_id(body: dict[str, Any], who: str) -> str:
    return f"{who}: {body}"


@pytest.mark.parametrize(
    ("body", "who", "expected"),
    [pytest.param(b, w, e, id=case_id(b, w)) for b, w, e in EVENT_CASES],
)
async def test_events_scope_filter_selects(
    db: asyncpg.Connection, schema: str, body: dict[str, Any], who: str, expected: set[int]
) -> None:
    assert set(await found(db, schema, body, who, "events")) == expected


VISIBLE_TO_ALPHA = {1, 2, 3, 4, 5, 7, 8, 9, 10}  # not 6 (deleted), not 11 (in BETA's own object)
VISIBLE_TO_BETA = {1, 2, 3, 5, 8, 9, 10, 11}  # not 4 (ALPHA's own), nor 7 (ALPHA's event)

#: body, viewer, the attributes found
ATTRIBUTE_CASES: list[Case] = [
    ({}, "alpha", VISIBLE_TO_ALPHA),
    ({}, "beta", VISIBLE_TO_BETA),
    ({}, "admin", VISIBLE_TO_ALPHA | VISIBLE_TO_BETA),
    ({"value": "203.0.113.5"}, "alpha", {1, 7}),
    ({"value": "203.0.113.5"}, "beta", {1}),
    ({"value": "!203.0.113.5"}, "alpha", VISIBLE_TO_ALPHA - {1, 7}),
    ({"value": "%example.com"}, "alpha", {2, 4}),
    ({"value": "0cc175b9c0f1b6a831c399e269772661"}, "alpha", {10}),
    ({"value": "a.exe|0cc175b9c0f1b6a831c399e269772661"}, "alpha", set()),
    ({"value": "http://example.com/a_b%20c"}, "alpha", {5}),
    ({"value": "%a_b%"}, "alpha", {5}),
    ({"value": "%a_e%"}, "alpha", set()),
    ({"value": "%EXAMPLE.NET"}, "alpha", {8}),
    ({"value": {"OR": ["203.0.113.5"], "NOT": ["%"]}}, "alpha", set()),
    ({"type": "email-src"}, "alpha", {4, 9}),
    ({"type": ["ip-dst", "domain"]}, "alpha", {1, 2, 7, 8}),
    ({"type": "!ip-dst&&!domain"}, "alpha", {3, 4, 5, 9, 10}),
    ({"category": "Payload delivery"}, "alpha", {3, 4, 9, 10}),
    ({"category": "%activity"}, "beta", {1, 2, 5, 8}),
    ({"object_relation": "md5"}, "alpha", {3}),
    ({"object_relation": "!md5"}, "alpha", VISIBLE_TO_ALPHA - {3}),
    ({"to_ids": 1}, "alpha", {1, 2, 3, 7, 8}),
    ({"to_ids": "0"}, "alpha", {4, 5, 9, 10}),
    ({"to_ids": [0, 1]}, "alpha", VISIBLE_TO_ALPHA),
    ({"deleted": 1}, "alpha", {6}),
    ({"deleted": [0, 1]}, "alpha", VISIBLE_TO_ALPHA | {6}),
    ({"tags": "type:OSINT"}, "alpha", {1}),
    ({"tags": "tlp:amber"}, "alpha", {5, 7}),
    ({"tags": "malware:emotet"}, "alpha", {1, 2, 3, 4, 8}),
    ({"tags": "!malware:emotet"}, "alpha", {5, 7, 9, 10}),
    ({"tags": "!tlp:white"}, "beta", {5, 8, 9, 10, 11}),
    ({"tags": {"AND": ["malware:emotet", "type:OSINT"]}}, "alpha", {1}),
    ({"tags": {"OR": ["tlp:amber"], "NOT": ["type:OSINT"]}}, "alpha", {5, 7}),
    ({"org": "Beta Corp"}, "alpha", {5, 8, 9, 10}),
    ({"eventid": 1}, "alpha", {1, 2, 3, 4}),
    ({"eventid": 1}, "beta", {1, 2, 3}),
    ({"eventid": 3}, "beta", set()),
    ({"uuid": str(at(1))}, "alpha", {1}),
    ({"uuid": str(ev(2))}, "alpha", {5}),
    ({"uuid": [f"!{ev(1)}", f"!{at(10)}"]}, "alpha", {5, 7, 8, 9}),
    ({"timestamp": T0 + 405}, "alpha", {8, 9, 10}),
    ({"attribute_timestamp": [T0 + 100, T0 + 103]}, "alpha", {1, 2, 3}),
    ({"event_timestamp": T0 + 250}, "alpha", {7, 8, 9, 10}),
    ({"published": 0}, "alpha", {5}),
    ({"from": "2024-03-01", "to": "2024-03-10"}, "alpha", {7}),
    ({"last": T0 + 400}, "beta", {8, 9, 10, 11}),
    ({"threat_level_id": 4}, "beta", {8, 9, 10, 11}),
    ({"eventinfo": "%wave%", "type": "email-src"}, "beta", set()),
]


@pytest.mark.parametrize(
    ("body", "who", "expected"),
    [pytest.param(b, w, e, id=case_id(b, w)) for b, w, e in ATTRIBUTE_CASES],
)
async def test_attributes_scope_filter_selects(
    db: asyncpg.Connection, schema: str, body: dict[str, Any], who: str, expected: set[int]
) -> None:
    assert set(await found(db, schema, body, who, "attributes")) == expected


async def test_another_org_never_sees_an_org_only_event_however_it_asks(
    db: asyncpg.Connection, schema: str
) -> None:
    for body in (
        {"eventid": 3},
        {"uuid": str(ev(3))},
        {"value": "203.0.113.5", "org": "Alpha CERT"},
        {"tags": "tlp:amber", "eventinfo": "Internal only"},
        {"published": 1, "timestamp": [T0 + 300, T0 + 300]},
    ):
        assert 3 not in await found(db, schema, body, "beta", "events")
        assert 7 not in await found(db, schema, body, "beta", "attributes")
        assert 3 in await found(db, schema, {**body, "eventid": 3}, "alpha", "events")


async def test_pages_are_slices_of_the_results_by_id(db: asyncpg.Connection, schema: str) -> None:
    pages = [await found(db, schema, {"limit": 2, "page": p}, "alpha", "events") for p in (1, 2, 3)]
    assert pages == [[1, 2], [3, 4], [5]]
    page = await found(db, schema, {"limit": 3, "page": 2, "to_ids": 1}, "alpha", "attributes")
    assert page == [7, 8]
    assert await found(db, schema, {"limit": 2, "page": 9}, "alpha", "events") == []


async def test_unpaginated_queries_count_every_match(db: asyncpg.Connection, schema: str) -> None:
    f = parse_filters({"limit": 1, "tags": "tlp:%"}, scope="events")
    sql, params = events_query(f, VIEWERS["alpha"], schema=schema, paginate=False)
    assert await db.fetchval(f"SELECT count(*) FROM ({sql}) found", *params) == 3


# --- CSV ----------------------------------------------------------------------------------------


def test_the_csv_header_is_misp_s_default() -> None:
    assert ",".join(csv_header(None, False)) == (
        "uuid,event_id,category,type,value,comment,to_ids,date,object_relation,attribute_tag,"
        "object_uuid,object_name,object_meta_category"
    )


def test_the_csv_header_with_context_and_with_requested_attributes() -> None:
    assert csv_header(None, True)[-9:] == [
        "event_info", "event_member_org", "event_source_org", "event_distribution",
        "event_threat_level_id", "event_analysis", "event_date", "event_tag", "event_timestamp",
    ]  # fmt: skip
    requested = ["uuid", "value", "timestamp", "object_meta-category"]
    assert csv_header(requested, False) == ["uuid", "value", "date", "object_meta_category"]


ATTRIBUTE = {
    "id": 10, "uuid": at(10), "event_id": 4, "object_id": None, "object_relation": None,
    "category": PAYLOAD, "type": "filename|md5", "value1": 'a "quoted".exe',
    "value2": "0cc175b9c0f1b6a831c399e269772661", "to_ids": False, "comment": "",
    "distribution": 5, "sharing_group_id": None, "timestamp": T0, "first_seen": None,
    "last_seen": None, "deleted": False, "disable_correlation": False,
}  # fmt: skip
OBJ_UUID = uuid.UUID("0b000000-0000-4000-8000-000000000001")
EVENT = {"id": 4, "info": "Beta report", "distribution": 3, "threat_level_id": 1,
         "analysis": 2, "date": "2024-03-20", "timestamp": T0 + 400}  # fmt: skip


def test_a_csv_line_quotes_text_leaves_numbers_bare_and_writes_booleans_as_digits() -> None:
    cells = csv_row(ATTRIBUTE, EVENT, attribute_tags=["tlp:white", "x"])
    assert ",".join(cells) == (
        f'"{at(10)}",4,"Payload delivery","filename|md5",'
        '"a ""quoted"".exe|0cc175b9c0f1b6a831c399e269772661","",0,'
        f'{T0},"","tlp:white,x","","",""'
    )


def test_a_csv_line_of_an_object_attribute_with_the_event_s_context() -> None:
    attribute = {**ATTRIBUTE, "value1": "8080", "value2": "", "object_relation": "port"}
    obj = {"uuid": OBJ_UUID, "name": "file", "meta_category": "file"}
    cells = csv_row(
        attribute,
        EVENT,
        include_context=True,
        object_row=obj,
        event_tags=["tlp:amber"],
        org_name="Alpha CERT",
        orgc_name="Beta Corp",
    )
    assert cells[4] == "8080"  # numeric, so bare, as PHP's is_numeric says
    assert cells[8:] == [
        '"port"', '""', f'"{OBJ_UUID}"', '"file"', '"file"', '"Beta report"', '"Alpha CERT"',
        '"Beta Corp"', "3", '"High"', "2", '"2024-03-20"', '"tlp:amber"', str(T0 + 400),
    ]  # fmt: skip


def test_requested_attributes_pick_any_column_and_unknown_ones_stay_empty() -> None:
    attribute = {**ATTRIBUTE, "first_seen": 1_700_000_000_123_456}
    cells = csv_row(
        attribute,
        EVENT,
        requested=["id", "value1", "first_seen", "event_info", "sharing_group_id", "nonsense"],
    )
    assert cells == [
        "10",
        '"a ""quoted"".exe"',
        '"2023-11-14T22:13:20.123456+00:00"',
        '"Beta report"',
        "0",
        '""',
    ]


def test_the_csv_document_ends_with_an_empty_line_and_may_lack_its_header() -> None:
    header = csv_header(["uuid", "value"], False)
    assert render_csv(header, [['"u"', '"v"']], headerless=False) == 'uuid,value\n"u","v"\n\n'
    assert render_csv(header, [['"u"', '"v"']], headerless=True) == '"u","v"\n\n'


async def test_csv_lines_from_the_rows_a_search_found(db: asyncpg.Connection, schema: str) -> None:
    f = parse_filters({"returnFormat": "csv", "object_relation": "md5"}, scope="attributes")
    sql, params = attributes_query(f, VIEWERS["beta"], schema=schema)
    (attribute_id,) = [r[0] for r in await db.fetch(sql, *params)]
    attribute = await db.fetchrow(f"SELECT * FROM {schema}.attributes WHERE id = $1", attribute_id)
    event = await db.fetchrow(f"SELECT * FROM {schema}.events WHERE id = $1", attribute["event_id"])
    obj = await db.fetchrow(f"SELECT * FROM {schema}.objects WHERE id = $1", attribute["object_id"])
    tags = [
        r["name"]
        for r in await db.fetch(
            f"SELECT t.name FROM {schema}.attribute_tags x JOIN {schema}.tags t ON t.id = x.tag_id"
            " WHERE x.attribute_id = $1 ORDER BY x.id",
            attribute_id,
        )
    ]
    text_ = render_csv(
        csv_header(f.requested_attributes, f.include_context),
        [csv_row(dict(attribute), dict(event), object_row=dict(obj), attribute_tags=tags)],
        headerless=f.headerless,
    )
    assert text_.splitlines()[1] == (
        f'"{at(3)}",1,"Payload delivery","md5","d41d8cd98f00b204e9800998ecf8427e",'
        f'"say ""3""",1,{T0 + 103},"md5","tlp:white","{obj["uuid"]}","file","file"'
    )
