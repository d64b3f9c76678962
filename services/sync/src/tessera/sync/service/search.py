"""MISP's ``events/restSearch`` and ``attributes/restSearch``, streamed: the answer is written
as it is read, a page of ids at a time, so a search matching 100,000 attributes never holds
more than one page of them (or one event) in memory.

* What the search is (:func:`harvest`, :func:`search`): the filters of a JSON body (or its
  ``request``), then CakePHP's ordered URL parameters (``/restSearch/csv``: the first is
  ``returnFormat``) and named ones (``/value:x``), each overriding the one before, as
  ``AppController::_harvestParameters``. A POST without a body and a GET without parameters
  are refused (400), as MISP does; so is a filter with an invalid value (400 naming it),
  all before the first byte is sent.
* How it is read: :mod:`tessera.sync.search` selects the ids of what matches among what the
  viewer may see (the access rules are in that SQL), :data:`ID_PAGE` ids at a time by keyset
  (``id > last``: one short query each, never a cursor held open). Then each slice of
  :data:`ATTRIBUTE_BATCH` attributes is read in a read-only snapshot, the search's conditions
  checked again on those ids (so what stopped being visible since is not sent), or each
  event by :func:`tessera.sync.store.load_event` (which checks them itself); the connection
  goes back to the pool before the slice is rendered and sent: no connection nor transaction
  stays open while the client reads.
* What it answers, as MISP's ``JsonExport`` and ``CsvExport``: events as ``events/view``
  shows them (``{"response": [{"Event": ...}, ...]}``; ``metadata`` leaves out their
  attributes, objects and reports), attributes as ``MispAttribute::fetchAttributes`` finds
  them (``{"response": {"Attribute": [...]}}``, each with its ``Event`` summary, its
  ``Object`` summary when in one, its ``Tag`` list, and its event's tags with
  ``inherited: 1`` under ``includeEventTags``), or either as MISP's CSV
  (:func:`tessera.sync.search.csv_row`).
* Inside an event answered, MISP's ``fetchEvent`` keeps only the attributes of ``to_ids``
  (when one value is asked) and of ``deleted``, and drops those carrying a ``NOT`` tag
  (``blockedAttributeTags``); here that holds for the attributes of objects too (MISP
  forgets them), and NOT tags match as the search does (names whatever their case,
  ``%`` patterns, ids). ``value``, ``type`` and the other attribute filters choose events,
  not what is shown of them, as in MISP.
* Local tags are left out for a sync user, as ``events/view`` does (MISP shows them in the
  attributes scope; this service never lets a local tag leave it).

``X-Result-Count`` is the number of events (attributes) matching, ``limit``/``page`` aside:
one ``count(*)`` before streaming starts. A failure once streaming has started can only cut
the answer short (the status is sent): the client sees JSON that does not parse.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from anyio import to_thread

from tessera.common.db import UnitOfWork
from tessera.common.problems import Problem
from tessera.sync import store
from tessera.sync.search import (
    FilterError,
    Filters,
    Scope,
    attributes_query,
    csv_header,
    csv_row,
    events_query,
    parse_filters,
)
from tessera.sync.store.tags import TAG_COLUMNS, split_tag
from tessera.sync.viewer import Viewer
from tessera.sync.wire import render_attribute, render_event
from tessera.sync.wire.scalars import wire_int

__all__ = [
    "ATTRIBUTE_BATCH",
    "ID_PAGE",
    "InvalidFilter",
    "NoFilters",
    "Search",
    "harvest",
    "search",
]

Conn = Any
Json = dict[str, Any]

ID_PAGE = 5_000
"""ids of what matches read at a time (each event is then read, rendered and sent alone)"""
ATTRIBUTE_BATCH = 500
"""attributes read, rendered and sent at a time"""
_LARGE = 500
"""attributes from which rendering an event leaves the event loop"""

# CakePHP's ordered URL parameters (RestSearchComponent::$paramArray), as far as they go
# before the ones this service does not read
_ORDERED: dict[str, tuple[str, ...]] = {
    "events": (
        "returnFormat", "value", "type", "category", "org", "tags", "searchall", "from", "to",
        "last", "eventid", "withAttachments", "metadata", "uuid", "publish_timestamp",
        "timestamp", "event_timestamp", "event_tags", "published", "enforceWarninglist",
        "sgReferenceOnly", "limit", "page",
    ),
    "attributes": (
        "returnFormat", "value", "value1", "value2", "type", "category", "org", "tags", "from",
        "to", "last", "eventid", "withAttachments", "uuid", "publish_timestamp", "published",
        "timestamp", "enforceWarninglist", "to_ids", "deleted", "includeEventUuid",
        "event_timestamp", "threat_level_id", "includeEventTags", "includeProposals", "limit",
        "page",
    ),
}  # fmt: skip
_UNSET = ("", "null", "0", "false")
"""ordered URL parameters MISP reads as not given"""
_NOT_SHOWN = ("Attribute", "ShadowAttribute", "Object", "EventReport")
"""what ``metadata`` leaves out of an event"""


class NoFilters(Problem):
    """``_harvestParameters``: a POST without a body, or a GET without parameters."""

    status = 400
    code = "misp_no_filters"
    title = "Either specify the search terms in the url, or POST a json with the filter parameters."


class InvalidFilter(Problem):
    """A restSearch parameter with a value MISP's forms do not allow; ``errors`` names it."""

    status = 400
    code = "misp_invalid_filter"
    title = "Invalid filter"

    @classmethod
    def of(cls, error: FilterError) -> InvalidFilter:
        return cls(
            title=f"Invalid {error.parameter}.",
            detail=str(error),
            errors=[{"field": error.parameter, "in": "body", "type": "value_error",
                     "message": error.problem}],
        )  # fmt: skip


def harvest(
    method: str,
    body: Any,
    *,
    positional: Sequence[str],
    named: Mapping[str, str],
    scope: Scope,
) -> dict[str, Any]:
    """The parameters of a restSearch request: the JSON body's (or its ``request``'s), then
    the ordered URL parameters (``/restSearch/csv/ip-dst``: ``returnFormat``, ``value``...),
    then the named ones (``/type:ip-dst``), ``;`` standing for ``:`` in URLs."""
    if method == "POST":
        if body is not None and not isinstance(body, Mapping):
            raise NoFilters(title="The filters must be a JSON object.")
        if not body:
            raise NoFilters()
    params = dict(body or {})
    if isinstance(params.get("request"), Mapping):
        params = dict(params["request"])
    for name, value in zip(_ORDERED[scope], positional, strict=False):
        if value.strip().lower() not in _UNSET:
            params[name] = value.replace(";", ":")
    params |= {name: value.replace(";", ":") for name, value in named.items()}
    if not params:
        raise NoFilters(
            title="Restsearch queries using GET and no parameters are not allowed. If you have "
            "passed parameters via a JSON body, make sure you use POST requests."
        )
    return params


@dataclass(frozen=True)
class Search:
    """A search ready to be answered: ``chunks`` reads nothing until it is iterated."""

    scope: Scope
    filters: Filters
    total: int
    """what matches, ``limit`` and ``page`` aside (MISP's ``X-Result-Count``)"""
    chunks: AsyncIterator[bytes]

    @property
    def media_type(self) -> str:
        return _MEDIA_TYPES[self.filters.return_format]

    @property
    def filename(self) -> str | None:
        """``RestSearchComponent::getFilename``: ``misp.event.{id|uuid|list}.{format}`` for
        events, none for attributes."""
        if self.scope != "events":
            return None
        terms = self.filters.eventid
        one = terms.any_of[0] if terms and len(terms.any_of) == 1 and not (
            terms.all_of or terms.none_of) else None  # fmt: skip
        return f"misp.event.{one if one is not None else 'list'}.{self.filters.return_format}"


_MEDIA_TYPES = {"json": "application/json", "csv": "text/csv", "text": "text/plain"}
_OPENINGS = {"csv": b"", "text": b""}  # csv: its header, unless headerless
_CLOSINGS = {"csv": b"\n", "text": b""}


def _value(attribute: Mapping[str, Any]) -> str:
    second = attribute.get("value2") or ""
    return f"{attribute['value1']}|{second}" if second else str(attribute["value1"])


def _text(attributes: Iterable[Mapping[str, Any]], seen: set[str]) -> bytes:
    """``TextExport``: each value once, one a line, in the order found (MISP gathers them
    all and writes them at the end; here each is written once found)."""
    lines = []
    for attribute in attributes:
        value = _value(attribute)
        if value not in seen:
            seen.add(value)
            lines.append(value + "\n")
    return "".join(lines).encode()


@dataclass(frozen=True)
class _Shown:
    """What the filters do not say but the answer depends on."""

    exclude_local_tags: bool
    event_uuid: bool
    seen: set[str] = field(default_factory=set)
    """the values written so far (``text``: each once)"""


def _wants(params: Mapping[str, Any], name: str) -> bool | None:
    value = params.get(name)
    if value is None or value == "":
        return None
    return str(value).strip().lower() in ("1", "true")


async def search(
    uow: UnitOfWork, viewer: Viewer, params: Mapping[str, Any], *, scope: Scope
) -> Search:
    """Read ``params`` (400 :class:`InvalidFilter` naming a bad one), count what matches,
    and answer the search with its content still to be read."""
    try:
        filters = parse_filters(params, scope=scope)
    except FilterError as error:
        raise InvalidFilter.of(error) from None
    select = events_query if scope == "events" else attributes_query
    query = _Query(select(filters, viewer), select(filters, viewer, paginate=False))
    async with uow.driver() as conn:
        total = await conn.fetchval(
            f"SELECT count(*) FROM ({query.everything}) found",  # noqa: S608
            *query.everything_args,
        )
    local = _wants(params, "excludeLocalTags")
    shown = _Shown(
        exclude_local_tags=(viewer.may_sync and not viewer.site_admin) if local is None else local,
        event_uuid=bool(_wants(params, "includeEventUuid")),
    )
    if scope == "events":
        chunks = _events(uow, viewer, filters, shown, query)
    else:
        chunks = _attributes(uow, filters, shown, query)
    return Search(scope=scope, filters=filters, total=int(total), chunks=chunks)


# --- reading ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Query:
    """The search's SQL and arguments (:func:`tessera.sync.search.events_query` or
    ``attributes_query``): ``paged`` selects the ids answered (``limit``/``page`` applied),
    ``unpaged`` all that match (to count them, and to check a slice of ids again)."""

    paged: tuple[str, list[Any]]
    unpaged: tuple[str, list[Any]]

    @property
    def everything(self) -> str:
        return self.unpaged[0]

    @property
    def everything_args(self) -> list[Any]:
        return self.unpaged[1]

    async def ids(self, uow: UnitOfWork) -> AsyncIterator[list[int]]:
        """The ids answered, in order, :data:`ID_PAGE` at a time: each page one query on a
        connection given back before the page is used."""
        sql, args = self.paged
        n = len(args)
        keyset = f"SELECT id FROM ({sql}) found WHERE id > ${n + 1} ORDER BY id LIMIT ${n + 2}"  # noqa: S608
        after = 0
        while True:
            async with uow.driver() as conn:
                ids = [int(r["id"]) for r in await conn.fetch(keyset, *args, after, ID_PAGE)]
            if ids:
                yield ids
            if len(ids) < ID_PAGE:
                return
            after = ids[-1]

    def still(self, first_param: int) -> str:
        """``SELECT id`` of the ids in ``$first_param`` that still match (the condition
        reaches the search's indexes: a few ms for a slice)."""
        return (
            f"SELECT id FROM ({self.everything}) found"  # noqa: S608
            f" WHERE id = ANY(${first_param}::bigint[])"
        )


@dataclass
class _Batch:
    """A page of attributes and what their rendering needs, by id."""

    attributes: list[dict[str, Any]]
    events: dict[int, dict[str, Any]]
    objects: dict[int, dict[str, Any]]
    tags: dict[int, list[tuple[dict[str, Any], dict[str, Any]]]]
    event_tags: dict[int, list[tuple[dict[str, Any], dict[str, Any]]]]


async def _attribute_batch(
    conn: Conn, query: _Query, ids: list[int], *, event_tags: bool
) -> _Batch:
    """The attributes ``ids`` that still match, and what their rendering needs."""
    args = query.everything_args
    attributes = [dict(r) for r in await conn.fetch(
        f"SELECT * FROM attributes WHERE id IN ({query.still(len(args) + 1)}) "  # noqa: S608
        "ORDER BY id", *args, ids,
    )]  # fmt: skip
    event_ids = sorted({a["event_id"] for a in attributes})
    events = {
        r["id"]: dict(r)
        for r in await conn.fetch(
            "SELECT e.*, org.name AS org_name, orgc.name AS orgc_name FROM events e "
            "JOIN organisations org ON org.id = e.org_id "
            "JOIN organisations orgc ON orgc.id = e.orgc_id WHERE e.id = ANY($1::bigint[])",
            event_ids,
        )
    }
    object_ids = sorted({a["object_id"] for a in attributes if a["object_id"]})
    objects = {
        r["id"]: dict(r)
        for r in await conn.fetch(
            "SELECT id, uuid, name, meta_category, distribution, sharing_group_id "
            "FROM objects WHERE id = ANY($1::bigint[])",
            object_ids,
        )
    }
    tags = await store.attribute_tags_of(conn, [a["id"] for a in attributes])
    by_event: dict[int, list[tuple[dict[str, Any], dict[str, Any]]]] = {}
    if event_tags:
        link = ("id", "event_id", "tag_id", "local", "relationship_type")
        for row in await conn.fetch(
            "SELECT et.id, et.event_id, et.tag_id, et.local, et.relationship_type, "  # noqa: S608
            f"{TAG_COLUMNS} FROM event_tags et JOIN tags t ON t.id = et.tag_id "
            "WHERE et.event_id = ANY($1::bigint[]) ORDER BY et.id",
            event_ids,
        ):
            by_event.setdefault(int(row["event_id"]), []).append(split_tag(row, link))
    return _Batch(attributes, events, objects, tags, by_event)


# --- the attributes scope ---------------------------------------------------------------------


def _shown_tags(
    links: Iterable[tuple[Mapping[str, Any], Mapping[str, Any]]], exclude_local: bool
) -> list[tuple[Mapping[str, Any], Mapping[str, Any]]]:
    """Exportable tags only (MISP's ``includeAllTags`` aside), local ones not for a sync user."""
    return [(t, link) for t, link in links
            if t["exportable"] and not (exclude_local and link["local"])]  # fmt: skip


def _numerical(tag: Mapping[str, Any]) -> str | None:
    value = tag.get("numerical_value")
    return None if value is None else str(value)


def _attribute_json(attribute: Mapping[str, Any], batch: _Batch, shown: _Shown, *,
                    inherited: bool) -> Json:  # fmt: skip
    """One attribute as ``JsonExport`` writes it in the attributes scope."""
    body = render_attribute(attribute)["Attribute"]
    del body["value1"], body["value2"]
    event = batch.events[attribute["event_id"]]
    if shown.event_uuid:
        body["event_uuid"] = str(event["uuid"])
    body["Event"] = {
        "org_id": wire_int(event["org_id"]),
        "distribution": wire_int(event["distribution"]),
        "publish_timestamp": wire_int(event["publish_timestamp"]),
        "id": wire_int(event["id"]),
        "info": event["info"],
        "orgc_id": wire_int(event["orgc_id"]),
        "uuid": str(event["uuid"]),
    }
    obj = batch.objects.get(attribute["object_id"] or 0)
    if obj is not None:
        body["Object"] = {
            "id": wire_int(obj["id"]),
            "distribution": wire_int(obj["distribution"]),
            "sharing_group_id": wire_int(obj["sharing_group_id"]),
        }
    tags: list[Json] = [
        {"id": wire_int(t["id"]), "name": t["name"], "colour": t["colour"],
         "numerical_value": _numerical(t), "is_galaxy": bool(t["is_galaxy"]),
         "local": bool(link["local"])}
        for t, link in _shown_tags(batch.tags.get(attribute["id"], []), shown.exclude_local_tags)
    ]  # fmt: skip
    if inherited:
        links = batch.event_tags.get(attribute["event_id"], [])
        tags += [
            {"id": wire_int(t["id"]), "name": t["name"], "colour": t["colour"],
             "numerical_value": _numerical(t), "inherited": 1}
            for t, _ in _shown_tags(links, shown.exclude_local_tags)
        ]  # fmt: skip
    if tags:
        body["Tag"] = tags
    return body


def _names(
    links: Iterable[tuple[Mapping[str, Any], Mapping[str, Any]]], exclude: bool
) -> list[str]:
    return [t["name"] for t, _ in _shown_tags(links, exclude)]


def _attribute_csv(attribute: Mapping[str, Any], batch: _Batch, filters: Filters,
                   shown: _Shown) -> str:  # fmt: skip
    event = batch.events[attribute["event_id"]]
    exclude = shown.exclude_local_tags
    return ",".join(csv_row(
        attribute, event, requested=filters.requested_attributes,
        include_context=filters.include_context,
        object_row=batch.objects.get(attribute["object_id"] or 0),
        attribute_tags=_names(batch.tags.get(attribute["id"], []), exclude),
        event_tags=_names(batch.event_tags.get(attribute["event_id"], []), exclude),
        org_name=event["org_name"], orgc_name=event["orgc_name"],
    )) + "\n"  # fmt: skip


def _render_attributes(batch: _Batch, filters: Filters, shown: _Shown, *, first: bool) -> bytes:
    """A page of attributes as the next part of the answer (CPU-bound: run in a thread)."""
    if filters.return_format == "text":
        return _text(batch.attributes, shown.seen)
    if filters.return_format == "csv":
        return "".join(_attribute_csv(a, batch, filters, shown) for a in batch.attributes).encode()
    inherited = filters.include_event_tags
    parts = [_json(_attribute_json(a, batch, shown, inherited=inherited)) for a in batch.attributes]
    return (b"" if first else b",") + b",".join(parts)


async def _attribute_slice(
    uow: UnitOfWork, query: _Query, ids: list[int], filters: Filters, shown: _Shown, *,
    first: bool,
) -> bytes:  # fmt: skip
    """A slice of attributes read (the connection given back), then rendered in a thread."""
    csv = filters.return_format == "csv"
    async with uow.driver() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
        batch = await _attribute_batch(
            conn,
            query,
            ids,
            event_tags=filters.include_context if csv else filters.include_event_tags,
        )
    if not batch.attributes:
        return b""
    render = functools.partial(_render_attributes, batch, filters, shown, first=first)
    return await to_thread.run_sync(render)


async def _attributes(
    uow: UnitOfWork, filters: Filters, shown: _Shown, query: _Query
) -> AsyncIterator[bytes]:
    fmt = filters.return_format
    yield (
        _csv_header(filters)
        if fmt == "csv"
        else _OPENINGS.get(fmt, b'{"response": {"Attribute": [')
    )
    first = True
    async for ids in query.ids(uow):
        for start in range(0, len(ids), ATTRIBUTE_BATCH):
            chunk = await _attribute_slice(uow, query, ids[start : start + ATTRIBUTE_BATCH],
                                           filters, shown, first=first)  # fmt: skip
            if chunk:
                first = False
                yield chunk
            del chunk  # not held while the next slice is read
    yield _CLOSINGS.get(fmt, b"]}}\n")


# --- the events scope -------------------------------------------------------------------------


def _tag_matcher(terms: Sequence[int | str]) -> Callable[[Mapping[str, Any]], bool]:
    """A tag named (whatever its case), matching a ``%`` pattern, or with an id of ``terms``:
    what the search's ``tags`` match in SQL."""
    ids = {t for t in terms if isinstance(t, int)}
    names = {t.lower() for t in terms if isinstance(t, str) and "%" not in t}
    patterns = [
        re.compile(
            "".join(".*" if c == "%" else re.escape(c) for c in t), re.IGNORECASE | re.DOTALL
        )
        for t in terms
        if isinstance(t, str) and "%" in t
    ]

    def matches(tag: Mapping[str, Any]) -> bool:
        name = str(tag["name"])
        return tag["id"] in ids or name.lower() in names or any(p.fullmatch(name) for p in patterns)

    return matches


def _keep_attributes(loaded: store.Loaded, filters: Filters) -> None:
    """``fetchEvent``'s attribute conditions: ``to_ids`` and the NOT tags (``deleted`` is
    read as such by :func:`store.load_event`)."""
    keep: list[Callable[[Mapping[str, Any]], bool]] = []
    if filters.to_ids is not None and len(filters.to_ids) == 1:
        wanted = next(iter(filters.to_ids))
        keep.append(lambda a: bool(a["to_ids"]) == wanted)
    if filters.tags is not None and filters.tags.none_of:
        blocked = _tag_matcher(filters.tags.none_of)
        refused = {link["attribute_id"] for tag, link in loaded.attribute_tags if blocked(tag)}
        keep.append(lambda a: a["id"] not in refused)
    if keep:
        loaded.attributes = [a for a in loaded.attributes if all(k(a) for k in keep)]


def _event_csv(loaded: store.Loaded, filters: Filters, shown: _Shown) -> bytes:
    """``CsvExport::__eventsHandler``: the event's attributes, then its objects'."""
    exclude = shown.exclude_local_tags
    tags: dict[int, list[tuple[dict[str, Any], dict[str, Any]]]] = {}
    for tag, link in loaded.attribute_tags:
        tags.setdefault(link["attribute_id"], []).append((tag, link))
    event_tags = _names(loaded.tags, exclude)
    objects = {o["id"]: o for o in loaded.objects}
    inside: dict[int, list[dict[str, Any]]] = {}
    lines = []
    for attribute in loaded.attributes:
        if attribute["object_id"]:
            inside.setdefault(attribute["object_id"], []).append(attribute)
        else:
            lines.append((attribute, None))
    lines += [(a, objects[o]) for o in objects for a in inside.get(o, [])]
    return "".join(",".join(csv_row(
        attribute, loaded.event, requested=filters.requested_attributes,
        include_context=filters.include_context, object_row=obj,
        attribute_tags=_names(tags.get(attribute["id"], []), exclude), event_tags=event_tags,
        org_name=loaded.org["name"], orgc_name=loaded.orgc["name"],
    )) + "\n" for attribute, obj in lines).encode()  # fmt: skip


def _render_event(loaded: store.Loaded, filters: Filters, shown: _Shown, *, first: bool) -> bytes:
    """One event as the next part of the answer."""
    if filters.return_format == "text":  # flattened: its objects' attributes too
        return _text(loaded.attributes, shown.seen)
    if filters.return_format == "csv":
        return _event_csv(loaded, filters, shown)
    arguments = loaded.render_arguments() | {"exclude_local_tags": shown.exclude_local_tags}
    rendered = render_event(loaded.event, **arguments)
    if filters.metadata:
        for key in _NOT_SHOWN:
            rendered["Event"].pop(key, None)
    return (b"" if first else b",") + _json(rendered)


async def _event(
    uow: UnitOfWork, viewer: Viewer, event_id: int, filters: Filters, shown: _Shown, *,
    first: bool,
) -> bytes:  # fmt: skip
    """One event read (the connection given back), then rendered (in a thread when large);
    nothing when it is gone or no longer shared with the viewer since its id was read."""
    deleted = filters.deleted or frozenset({False})
    async with uow.driver() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
        loaded = await store.load_event(
            conn, event_id, viewer, deleted=deleted == {True, False},
            deleted_only=deleted == {True}, metadata=filters.metadata,
        )  # fmt: skip
    if loaded is None:
        return b""
    _keep_attributes(loaded, filters)
    render = functools.partial(_render_event, loaded, filters, shown, first=first)
    return render() if len(loaded.attributes) < _LARGE else await to_thread.run_sync(render)


async def _events(
    uow: UnitOfWork, viewer: Viewer, filters: Filters, shown: _Shown, query: _Query
) -> AsyncIterator[bytes]:
    fmt = filters.return_format
    yield _csv_header(filters) if fmt == "csv" else _OPENINGS.get(fmt, b'{"response": [')
    first = True
    async for ids in query.ids(uow):
        for event_id in ids:
            chunk = await _event(uow, viewer, event_id, filters, shown, first=first)
            if chunk:
                first = False
                yield chunk
            del chunk  # not held while the next event is read
    yield _CLOSINGS.get(fmt, b"]}\n")


# --- writing ----------------------------------------------------------------------------------


def _json(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


def _csv_header(filters: Filters) -> bytes:
    if filters.headerless:
        return b""
    return (
        ",".join(csv_header(filters.requested_attributes, filters.include_context)) + "\n"
    ).encode()
