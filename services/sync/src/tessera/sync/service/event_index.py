"""``events/index``: the events the caller may see, filtered as ``EventsController::index``
filters them for REST clients (``__setIndexFilterConditions``, ``__indexRestResponse``).

Parameters come as CakePHP named parameters, query parameters or a JSON body (possibly
``{"request": {...}}``), each with or without MISP's ``search`` prefix (``searchall`` is
``all``): ``all`` (a text in attribute values and comments, tags, the info, the uuid or the
creator's name), ``attribute`` and ``value`` (attribute values, as a pattern and exactly),
``published`` (``2`` or ``[0, 1]``: both), ``eventid`` (ids and uuids, ``!`` excludes),
``org`` (creator: id, uuid or name), ``eventinfo``, ``tag``/``tags`` (``a&b``: all of them),
``distribution``, ``analysis``, ``threatlevel``, ``sharinggroup`` (``|``-separated, ``!``
excludes), ``datefrom``/``dateuntil``, ``timestamp``/``publish_timestamp`` (a moment, a
``7d``/``12h``/``30m``/``10s`` delta, or ``[from, to]``), ``email`` (yours: your events),
``minimal`` (the short entries a pulling server asks for, of events with live attributes or
reports). ``page``/``limit`` paginate (no ``limit``: every event, as MISP answers REST
clients), ``sort``/``direction`` order (by id otherwise). Unknown parameters are ignored.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from tessera.common.db import UnitOfWork
from tessera.sync import access
from tessera.sync.viewer import Viewer
from tessera.sync.wire import render_index_entry

__all__ = ["Index", "index_events", "read_parameters"]

Json = dict[str, Any]

_FILTERS = frozenset({
    "all", "attribute", "published", "eventid", "datefrom", "dateuntil", "org", "eventinfo",
    "tag", "tags", "distribution", "sharinggroup", "analysis", "threatlevel", "email",
    "hasproposal", "timestamp", "publishtimestamp", "publish_timestamp", "minimal", "value",
})  # fmt: skip
_PAGING = ("limit", "page", "sort", "direction", "order")
_SORTABLE = frozenset({
    "id", "org_id", "orgc_id", "date", "threat_level_id", "info", "published", "uuid",
    "attribute_count", "analysis", "timestamp", "distribution", "sharing_group_id",
    "publish_timestamp", "sighting_timestamp", "locked", "disable_correlation",
})  # fmt: skip
_DELTA = re.compile(r"\s*([0-9]+)\s*([dhms])\s*", re.IGNORECASE)
_UNITS = {"d": 86400, "h": 3600, "m": 60, "s": 1}


def read_parameters(*sources: Mapping[str, Any]) -> dict[str, Any]:
    """The filters and paging of ``sources`` (later ones win), by MISP's names: lower case,
    without the ``search`` prefix."""
    found: dict[str, Any] = {}
    for source in sources:
        inner = source.get("request")
        body: Mapping[str, Any] = inner if isinstance(inner, Mapping) else source
        for key, value in body.items():
            name = key.lower()
            if name.startswith("search") and name[6:] in _FILTERS:
                name = name[6:]
            if name in _FILTERS or name in _PAGING:
                found[name] = value
    return found


@dataclass
class _Sql:
    args: list[Any] = field(default_factory=list)
    where: list[str] = field(default_factory=list)
    nothing: bool = False

    def arg(self, value: Any) -> str:
        self.args.append(value)
        return f"${len(self.args)}"


def _pieces(value: Any) -> list[str]:
    if isinstance(value, list | tuple):
        return [str(v).strip() for v in value if str(v).strip()]
    return [p.strip() for p in str(value).split("|") if p.strip()]


def _blank(value: Any) -> bool:
    return value is None or value == "" or value == []


def _moment(value: Any) -> int:
    """``AppModel::resolveTimeDelta``: seconds, or a delta back from now; anything else
    matches nothing (now + 1)."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return int(value)
    text = str(value).strip()
    if text.isdigit():
        return int(text)
    delta = _DELTA.fullmatch(text)
    if delta:
        return int(time.time()) - int(delta.group(1)) * _UNITS[delta.group(2).lower()]
    return int(time.time()) + 1


def _flag(value: Any) -> bool | None:
    """``published``: True, False, or None for both (``2``, ``[0, 1]``)."""
    if isinstance(value, list | tuple):
        states = {str(v).lower() in ("1", "true") for v in value}
        return None if len(states) != 1 else states.pop()
    text = str(value).strip().lower()
    if text == "2":
        return None
    return text in ("1", "true")


def _between(q: _Sql, column: str, value: Any) -> None:
    if isinstance(value, list | tuple) and len(value) >= 2:
        q.where.append(f"{column} >= {q.arg(_moment(value[0]))}")
        q.where.append(f"{column} <= {q.arg(_moment(value[1]))}")
    else:
        q.where.append(f"{column} >= {q.arg(_moment(value))}")


def _listed(q: _Sql, column: str, value: Any, *, numeric: bool = True) -> None:
    """``distribution``, ``analysis``, ``threatlevel``, ``sharinggroup``: ``|`` pieces, OR'ed,
    ``!`` excluding."""
    wanted: list[int] = []
    unwanted: list[int] = []
    for piece in _pieces(value):
        target = unwanted if piece.startswith("!") else wanted
        text = piece.removeprefix("!")
        if numeric and not text.isdigit():
            if target is wanted:
                q.nothing = True
            continue
        target.append(int(text))
    if wanted:
        q.where.append(f"{column} = ANY({q.arg(wanted)}::bigint[])")
    if unwanted:
        q.where.append(f"NOT ({column} = ANY({q.arg(unwanted)}::bigint[]))")


def _event_ids(q: _Sql, value: Any) -> None:
    ids: list[int] = []
    not_ids: list[int] = []
    uuids: list[UUID] = []
    not_uuids: list[UUID] = []
    for piece in _pieces(value):
        negated, text = piece.startswith("!"), piece.removeprefix("!")
        try:
            key: int | UUID = UUID(text) if len(text) == 36 else int(text)
        except ValueError:
            if not negated:
                q.nothing = True
            continue
        if isinstance(key, UUID):
            (not_uuids if negated else uuids).append(key)
        else:
            (not_ids if negated else ids).append(key)
    if ids or uuids:  # MISP ANDs ids with uuids (selecting nothing): either one here
        q.where.append(
            f"(e.id = ANY({q.arg(ids)}::bigint[]) OR e.uuid = ANY({q.arg(uuids)}::uuid[]))"
        )
    if not_ids:
        q.where.append(f"NOT (e.id = ANY({q.arg(not_ids)}::bigint[]))")
    if not_uuids:
        q.where.append(f"NOT (e.uuid = ANY({q.arg(not_uuids)}::uuid[]))")


def _org(q: _Sql, value: Any) -> None:
    """The creator, by id, uuid or name (case-insensitive); a wanted one that is unknown
    here selects nothing, as MISP does."""
    wanted = []
    for piece in _pieces(value):
        negated, text = piece.startswith("!"), piece.removeprefix("!")
        if text.isdigit():
            match = f"e.orgc_id = {q.arg(int(text))}"
        else:
            try:
                match = f"oc.uuid = {q.arg(UUID(text))}"
            except ValueError:
                match = f"upper(oc.name) = upper({q.arg(text)})"
        if negated:
            q.where.append(f"NOT ({match})")
        else:
            wanted.append(match)
    if wanted:
        q.where.append(f"({' OR '.join(wanted)})")


def _info(q: _Sql, value: Any) -> None:
    wanted = []
    for piece in _pieces(value):
        pattern = f"%{_escape(piece.removeprefix('!'))}%"
        if piece.startswith("!"):
            q.where.append(f"e.info NOT ILIKE {q.arg(pattern)}")
        else:
            wanted.append(f"e.info ILIKE {q.arg(pattern)}")
    if wanted:
        q.where.append(f"({' OR '.join(wanted)})")


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _tags(q: _Sql, value: Any) -> None:
    """Event tags by name or id; ``a&b``: tagged with each; ``!`` excludes; a wanted tag
    unknown here selects nothing."""
    pieces = _pieces(value)
    every = len(pieces) == 1 and "&" in pieces[0]
    if every:
        pieces = [p.strip() for p in pieces[0].split("&") if p.strip()]

    def tag(text: str) -> str:
        if text.isdigit():
            return f"t.id = {q.arg(int(text))}"
        return f"lower(t.name) = lower({q.arg(text)})"

    wanted = [p for p in pieces if not p.startswith("!")]
    for piece in pieces:
        if piece.startswith("!"):
            q.where.append(
                "NOT EXISTS (SELECT 1 FROM event_tags et JOIN tags t ON t.id = et.tag_id "  # noqa: S608 - placeholders only
                f"WHERE et.event_id = e.id AND {tag(piece[1:])})"
            )
    if not wanted:
        return
    tests = [
        "EXISTS (SELECT 1 FROM event_tags et JOIN tags t ON t.id = et.tag_id "  # noqa: S608 - placeholders only
        f"WHERE et.event_id = e.id AND {tag(piece)})"
        for piece in wanted
    ]
    q.where.append(f"({(' AND ' if every else ' OR ').join(tests)})")


def _attribute_match(q: _Sql, viewer: Viewer, condition: str) -> str:
    """An attribute of the event the viewer may see matches ``condition`` (on ``a``)."""
    seen, args = access.element_filter(
        viewer, alias="a", event_alias="e", first_param=len(q.args) + 1
    )
    q.args.extend(args)
    return (
        "EXISTS (SELECT 1 FROM attributes a WHERE a.event_id = e.id AND NOT a.deleted "  # noqa: S608 - placeholders only
        f"AND {seen} AND ({condition}))"
    )


def _everything(q: _Sql, viewer: Viewer, value: Any) -> None:
    """``searchall`` (``EventsController::__quickFilter``)."""
    texts = [str(v) for v in (value if isinstance(value, list | tuple) else [value])]
    ors = []
    for text in texts:
        like = q.arg(f"%{_escape(text)}%")
        ors.append(_attribute_match(
            q, viewer, f"a.value1 ILIKE {like} OR a.value2 ILIKE {like} OR a.comment ILIKE {like}"
        ))  # fmt: skip
        ors.append(
            "EXISTS (SELECT 1 FROM event_tags et JOIN tags t ON t.id = et.tag_id "  # noqa: S608 - placeholders only
            f"WHERE et.event_id = e.id AND t.name ILIKE {like})"
        )
        ors.append(
            "EXISTS (SELECT 1 FROM attribute_tags at JOIN tags t ON t.id = at.tag_id "  # noqa: S608 - placeholders only
            f"WHERE at.event_id = e.id AND t.name ILIKE {like})"
        )
        ors.append(f"e.info ILIKE {like} OR e.uuid::text ILIKE {like} OR oc.name ILIKE {like}")
    q.where.append(f"({' OR '.join(ors)})")


def _attribute_values(q: _Sql, viewer: Viewer, value: Any) -> None:
    """``attribute``: events with a value containing one piece, none containing a ``!``
    piece."""
    for piece in _pieces(value):
        like = q.arg(f"%{_escape(piece.removeprefix('!'))}%")
        match = _attribute_match(q, viewer, f"a.value1 ILIKE {like} OR a.value2 ILIKE {like}")
        q.where.append(f"NOT {match}" if piece.startswith("!") else match)


def _conditions(q: _Sql, viewer: Viewer, params: Mapping[str, Any]) -> None:
    for name, value in params.items():
        if _blank(value) and name != "minimal":
            continue
        if name == "all":
            _everything(q, viewer, value)
        elif name == "attribute":
            _attribute_values(q, viewer, value)
        elif name == "value":
            exact = q.arg([str(v) for v in (value if isinstance(value, list) else [value])])
            q.where.append(_attribute_match(
                q, viewer, f"a.value1 = ANY({exact}::text[]) OR a.value2 = ANY({exact}::text[])"
            ))  # fmt: skip
        elif name == "published":
            flag = _flag(value)
            if flag is not None:
                q.where.append(f"e.published = {q.arg(flag)}")
        elif name == "eventid":
            _event_ids(q, value)
        elif name == "datefrom":
            q.where.append(f"e.date >= {q.arg(str(value))}")
        elif name == "dateuntil":
            q.where.append(f"e.date <= {q.arg(str(value))}")
        elif name == "timestamp":
            _between(q, "e.timestamp", value)
        elif name in ("publish_timestamp", "publishtimestamp"):
            _between(q, "e.publish_timestamp", value)
        elif name == "org":
            _org(q, value)
        elif name == "eventinfo":
            _info(q, value)
        elif name in ("tag", "tags"):
            _tags(q, value)
        elif name in ("distribution", "analysis", "threatlevel", "sharinggroup"):
            column = {"threatlevel": "threat_level_id", "sharinggroup": "sharing_group_id"}
            _listed(q, f"e.{column.get(name, name)}", value)
        elif name == "email":
            if viewer.site_admin:
                q.where.append(
                    "e.user_id IN (SELECT id FROM users WHERE email ILIKE "  # noqa: S608 - placeholders only
                    f"{q.arg('%' + _escape(str(value).lower()) + '%')})"
                )
            elif str(value).strip().lower() == viewer.email.lower():
                q.where.append(f"e.user_id = {q.arg(viewer.user_id)}")
            else:
                q.nothing = True
        elif name == "hasproposal" and str(value) == "1":
            q.nothing = True  # no proposals here
        elif name == "minimal" and _flag(value):
            q.where.append(
                "(e.attribute_count > 0 OR EXISTS (SELECT 1 FROM event_reports r "
                "WHERE r.event_id = e.id AND NOT r.deleted))"
            )


def _whole(value: Any) -> int | None:
    text = str(value).strip()
    return int(text) if text.isdigit() else None


@dataclass(frozen=True)
class Index:
    """A page of ``events/index`` and how many events match in all (``X-Result-Count``)."""

    entries: list[Json]
    total: int


async def index_events(uow: UnitOfWork, viewer: Viewer, params: Mapping[str, Any]) -> Index:
    """``events/index`` for the viewer, with :func:`read_parameters`' ``params``."""
    q = _Sql()
    seen, args = access.event_filter(viewer, alias="e", first_param=1)
    q.args.extend(args)
    q.where.append(seen)
    _conditions(q, viewer, params)
    minimal = _flag(params.get("minimal", False)) is True
    if q.nothing:
        return Index([], 0)
    sort = str(params.get("sort", "id")).lower()
    order = f"e.{sort if sort in _SORTABLE else 'id'}"
    direction = "DESC" if str(params.get("direction", "")).lower() == "desc" else "ASC"
    limit, page = _whole(params.get("limit", "")), _whole(params.get("page", "")) or 1
    where = " AND ".join(q.where)
    base = f"FROM events e JOIN organisations oc ON oc.id = e.orgc_id WHERE {where}"
    paging = ""
    if limit:
        paging = f" LIMIT {q.arg(limit)} OFFSET {q.arg((page - 1) * limit)}"
    columns = (
        "e.id, e.timestamp, e.sighting_timestamp, e.published, e.uuid, oc.uuid AS orgc_uuid"
        if minimal
        else "e.*, oc.name AS orgc_name, oc.uuid AS orgc_uuid"
    )
    async with uow.driver() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
        rows = await conn.fetch(
            f"SELECT {columns} {base} ORDER BY {order} {direction}, e.id{paging}", *q.args
        )
        total = len(rows)
        if limit:
            count_args = q.args[:-2]
            total = int(await conn.fetchval(f"SELECT count(*) {base}", *count_args))
        if minimal:
            entries = [
                render_index_entry(dict(r), org={}, orgc={"uuid": r["orgc_uuid"]}, minimal=True)
                for r in rows
            ]
            return Index(entries, total)
        entries = await _full_entries(conn, rows)
    return Index(entries, total)


async def _full_entries(conn: Any, rows: Iterable[Any]) -> list[Json]:
    events = list(rows)
    ids = [r["id"] for r in events]
    org_ids = list({r["org_id"] for r in events} | {r["orgc_id"] for r in events})
    orgs = {
        r["id"]: dict(r)
        for r in await conn.fetch(
            "SELECT id, name, uuid FROM organisations WHERE id = ANY($1::bigint[])", org_ids
        )
    }
    groups = {
        r["id"]: dict(r)
        for r in await conn.fetch(
            "SELECT id, name, uuid FROM sharing_groups WHERE id = ANY($1::bigint[])",
            list({r["sharing_group_id"] for r in events if r["sharing_group_id"]}),
        )
    }
    links: dict[int, list[tuple[Json, Json]]] = {}
    for r in await conn.fetch(
        "SELECT et.id, et.event_id, et.local, et.relationship_type, t.id AS tag_id, t.name, "
        "t.colour, t.exportable, t.is_galaxy FROM event_tags et JOIN tags t ON t.id = et.tag_id "
        "WHERE et.event_id = ANY($1::bigint[]) ORDER BY et.id",
        ids,
    ):
        tag = {"id": r["tag_id"], "name": r["name"], "colour": r["colour"],
               "exportable": r["exportable"], "is_galaxy": r["is_galaxy"]}  # fmt: skip
        link = {"id": r["id"], "local": r["local"], "relationship_type": r["relationship_type"]}
        links.setdefault(r["event_id"], []).append((tag, link))
    return [
        render_index_entry(
            dict(r),
            org=orgs[r["org_id"]],
            orgc=orgs[r["orgc_id"]],
            tags=links.get(r["id"], []),
            sharing_group=groups.get(r["sharing_group_id"]),
        )
        for r in events
    ]
