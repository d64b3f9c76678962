"""MISP sightings through MISP's routes: ``sightings/add`` and ``sightings/listSightings``,
as ``SightingsController`` and ``Sighting::saveSightings`` / ``listSightings`` do them.

A sighting is the caller's organisation's: that one attribute (by id or uuid) was seen, or
every attribute the caller sees with that value. An expiration (type 2) replaces the
organisation's earlier expiration of the attribute. Who sees which sightings follows MISP's
default policy (``Plugin.Sightings_policy`` 0): the event's creator organisation sees them
all, others their own organisation's, a site admin everything. A sighting changes no
event's timestamp (MISP publishes sightings apart), only its ``sighting_timestamp``
(``Event::publishSightings``), which a push compares with a remote's to know whether to
offer it the event's sightings (``service/sighting_push.py``).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from uuid import UUID, uuid4

from pydantic import ValidationError

from tessera.common.db import UnitOfWork, driver_in_transaction
from tessera.common.problems import Problem
from tessera.sync import access, store
from tessera.sync.service import changes
from tessera.sync.service.problems import NotAllowed, NotPermitted
from tessera.sync.store import sightings as sighting_rows
from tessera.sync.viewer import Viewer
from tessera.sync.wire import SightingIn

__all__ = ["add_sightings", "list_sightings", "search_sightings"]

Conn = Any
Json = dict[str, Any]

_REASON = "Could not add the Sighting. Reason: "


class SightingRefused(Problem):
    """MISP answers these with a 200 and a ``message``; here they are the 4xx they are."""

    status = 400
    code = "misp_sighting_refused"
    title = "Could not add the Sighting."


def _sighting_json(row: Mapping[str, Any]) -> Json:
    return {
        "id": str(row["id"]),
        "attribute_id": str(row["attribute_id"]),
        "event_id": str(row["event_id"]),
        "org_id": str(row["org_id"] or 0),
        "date_sighting": str(row["date_sighting"]),
        "uuid": str(row["uuid"]),
        "source": row["source"],
        "type": str(row["type"]),
    }


def _read(body: Mapping[str, Any], now: int) -> SightingIn:
    """Type, moment (``timestamp``, or ``date`` and ``time``) and source."""
    moment: Any = body.get("timestamp")
    if body.get("date") and body.get("time"):
        try:
            moment = int(
                datetime.strptime(f"{body['date']} {body['time']}", "%Y-%m-%d %H:%M:%S")
                .replace(tzinfo=UTC)
                .timestamp()
            )
        except ValueError:
            raise SightingRefused(title=_REASON + "Invalid date or time.") from None
    try:
        return SightingIn.model_validate(
            {"type": body.get("type"), "date_sighting": moment or now,
             "source": str(body.get("source") or "").strip()}
        )  # fmt: skip
    except ValidationError as error:
        raise SightingRefused(title=_REASON + error.errors()[0]["msg"]) from None


async def _attributes(conn: Conn, viewer: Viewer, ident: Any, values: list[str]) -> list[Any]:
    """The live attributes the viewer sees: ``ident`` (an id, a uuid, or ids joined by
    ``|``), else those whose value is one of ``values``."""
    seen_event, args = access.event_filter(viewer, alias="e", first_param=1)
    seen, _ = access.element_filter(viewer, alias="a", event_alias="e", first_param=1)
    object_seen, _ = access.element_filter(viewer, alias="o", event_alias="e", first_param=1)
    first = len(args) + 1
    base = (
        "SELECT a.id, a.event_id FROM attributes a JOIN events e ON e.id = a.event_id "  # noqa: S608
        f"LEFT JOIN objects o ON o.id = a.object_id WHERE NOT a.deleted AND {seen_event} "
        f"AND {seen} AND (o.id IS NULL OR {object_seen}) AND "
    )
    if not ident:
        return list(await conn.fetch(
            base + f"(a.value1 = ANY(${first}::text[]) OR a.value2 = ANY(${first}::text[])) "
            "ORDER BY a.id",
            *args, values,
        ))  # fmt: skip
    text = str(ident).strip()
    pieces = text.split("|") if "|" in text else [text]
    ids = [int(p) for p in pieces if p.isdigit() and int(p) < 2**63]
    uuids = []
    for piece in pieces:
        try:
            uuids.append(UUID(piece))
        except ValueError:
            continue
    return list(await conn.fetch(
        base + f"(a.id = ANY(${first}::bigint[]) OR a.uuid = ANY(${first + 1}::uuid[])) "
        "ORDER BY a.id",
        *args, ids, uuids,
    ))  # fmt: skip


async def add_sightings(uow: UnitOfWork, viewer: Viewer, ident: str | None, payload: Any) -> Json:
    """``sightings/add[/{attribute id|uuid}]``: the last sighting saved, ``{"Sighting":
    {...}}``. The attribute may also be named by the body's ``uuid`` or ``id``; without one,
    ``value`` or ``values`` sight every attribute the caller sees with that value."""
    if not viewer.may_sight:
        raise NotPermitted()
    body: Any = payload if isinstance(payload, Mapping) else {}
    for wrapper in ("request", "Sighting"):
        if isinstance(body.get(wrapper), Mapping):
            body = body[wrapper]
    now = changes.epoch()
    sighting = _read(body, now)
    values = body.get("values", [body["value"]] if "value" in body else [])
    values = [str(v) for v in (values if isinstance(values, list) else [values])]
    ident = ident or body.get("uuid") or body.get("id")
    if not ident and not values:
        raise SightingRefused(title=_REASON + "No valid attributes found.", status=404)
    async with uow:
        conn = await driver_in_transaction(uow.session)
        attributes = await _attributes(conn, viewer, ident, values)
        if not attributes:
            raise SightingRefused(
                title=_REASON + "No valid attributes found that match the criteria.", status=404
            )
        if sighting.type == 2:
            await conn.execute(
                "DELETE FROM sightings WHERE org_id = $1 AND type = 2 "
                "AND attribute_id = ANY($2::bigint[])",
                viewer.org_id,
                [a["id"] for a in attributes],
            )
        last = None
        for attribute in attributes:
            last = await conn.fetchrow(
                "INSERT INTO sightings (uuid, attribute_id, event_id, org_id, date_sighting, "
                "source, type) VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING *",
                uuid4(), attribute["id"], attribute["event_id"], viewer.org_id,
                sighting.date_sighting or now, sighting.source, sighting.type,
            )  # fmt: skip
        for event_id in {a["event_id"] for a in attributes}:
            await sighting_rows.bump_sighting_timestamp(conn, event_id, now=now)
        await uow.commit()
    assert last is not None
    return {"Sighting": _sighting_json(last)}


async def list_sightings(
    uow: UnitOfWork, viewer: Viewer, ident: Any, context: str, org: Any = None
) -> list[Json]:
    """``sightings/listSightings/{id}/{context}[/{org}]``: the sightings of an attribute or
    an event the viewer sees, newest first, ``[{"Sighting": {...}, "Organisation": {"name":
    ...}}]``; only those of ``org`` (an id or a uuid) when given."""
    if context not in ("attribute", "event"):
        raise SightingRefused(title=f"Invalid context '{context}'.")
    async with uow.driver() as conn:
        text = str(ident or "").strip()
        if context == "attribute":
            found = await store.visible_attribute(conn, text, viewer, deleted=False)
            target = None if found is None else (found["id"], found["e_orgc_id"])
        else:
            found = await store.visible_event(conn, text, viewer)
            target = None if found is None else (found["id"], found["orgc_id"])
        if target is None:
            raise NotAllowed(title="Invalid object.")
        target_id, orgc_id = target
        org_id = await _org_id(conn, org)
        everything = viewer.site_admin or orgc_id == viewer.org_id
        rows = await conn.fetch(
            "SELECT s.*, o.name AS org_name FROM sightings s "  # noqa: S608 - a column name
            "LEFT JOIN organisations o ON o.id = s.org_id "
            f"WHERE s.{context}_id = $1 AND ($2::bigint IS NULL OR s.org_id = $2) "
            "AND ($3 OR s.org_id = $4) ORDER BY s.date_sighting DESC, s.id DESC",
            target_id, org_id, everything, viewer.org_id,
        )  # fmt: skip
    return [
        {"Sighting": _sighting_json(r), "Organisation": {"name": r["org_name"] or ""}} for r in rows
    ]


async def _org_id(conn: Conn, org: Any) -> int | None:
    if org in (None, "", 0, "0", False):
        return None
    text = str(org).strip()
    if text.isdigit():
        return int(text)
    try:
        found = await conn.fetchval("SELECT id FROM organisations WHERE uuid = $1", UUID(text))
    except ValueError:
        return -1
    return -1 if found is None else int(found)


def _ids(value: Any) -> list[str]:
    items = value if isinstance(value, list | tuple) else [value]
    return [str(i).strip() for i in items if str(i).strip()]


def _window(filters: Mapping[str, Any], now: int) -> tuple[int | None, int | None]:
    """``from``/``to``, or ``last`` (``0``: all time), else the last 30 days, as MISP's
    ``Sighting::restSearch``."""
    if filters.get("from") is not None and filters.get("to") is not None:
        return _moment(filters["from"], now), _moment(filters["to"], now)
    last = filters.get("last", "30d")
    if str(last).strip() in ("0", ""):
        return None, None
    return _moment(last, now), None


def _moment(value: Any, now: int) -> int:
    text = str(value).strip().lower()
    if text.isdigit():
        return int(text)
    units = {"d": 86400, "h": 3600, "m": 60, "s": 1}
    if text[:-1].isdigit() and text[-1:] in units:
        return now - int(text[:-1]) * units[text[-1]]
    raise SightingRefused(title=f"Invalid time filter {value!r}.")


async def search_sightings(
    uow: UnitOfWork, viewer: Viewer, context: str | None, filters: Mapping[str, Any]
) -> Json:
    """``sightings/restSearch[/{event|attribute}]`` (JSON): ``{"response": [{"Sighting":
    {...}}]}``, the sightings of the events or attributes named by ``id`` or ``uuid`` (what a
    pulling server asks for: ``{"uuid": [event uuids], "last": 0, "includeUuid": true}``),
    within ``from``/``to`` or ``last`` (30 days unless said), of ``type``, ``source`` and
    ``org_id`` (``!`` excludes) when given; only what the viewer sees, by MISP's policy."""
    context = context or filters.get("context") or None
    if context not in (None, "event", "attribute"):
        raise SightingRefused(title=f"Invalid context {context}.")
    if context and filters.get("id") in (None, "", []) and filters.get("uuid") in (None, "", []):
        raise SightingRefused(title="An ID or UUID must be provided if the context is set.")
    now = changes.epoch()
    event_seen, args = access.event_filter(viewer, alias="e", first_param=1)
    seen, _ = access.element_filter(viewer, alias="a", event_alias="e", first_param=1)
    object_seen, _ = access.element_filter(viewer, alias="o", event_alias="e", first_param=1)
    where = [event_seen, seen, f"(o.id IS NULL OR {object_seen})", "NOT a.deleted"]
    if not viewer.site_admin:
        where.append("(e.orgc_id = $1 OR s.org_id = $1)")  # $1: the viewer's organisation

    def arg(value: Any) -> str:
        args.append(value)
        return f"${len(args)}"

    start, end = _window(filters, now)
    if start is not None:
        where.append(f"s.date_sighting >= {arg(start)}")
    if end is not None:
        where.append(f"s.date_sighting <= {arg(end)}")
    if filters.get("type") not in (None, ""):
        where.append(
            f"s.type = {arg(int(str(filters['type'])) if str(filters['type']).isdigit() else -1)}"
        )
    if filters.get("source") not in (None, ""):
        where.append(f"s.source = {arg(str(filters['source']))}")
    column = "a" if context == "attribute" else "e"
    if filters.get("id") not in (None, "", []):
        ids = [int(i) for i in _ids(filters["id"]) if i.isdigit() and int(i) < 2**63]
        where.append(f"{column}.id = ANY({arg(ids)}::bigint[])")
    if filters.get("uuid") not in (None, "", []):
        uuids = []
        for item in _ids(filters["uuid"]):
            try:
                uuids.append(UUID(item))
            except ValueError:
                continue
        where.append(f"{column}.uuid = ANY({arg(uuids)}::uuid[])")
    if filters.get("org_id") not in (None, "", []):
        wanted: list[str] = []
        unwanted: list[str] = []
        for item in _ids(filters["org_id"]):
            (unwanted if item.startswith("!") else wanted).append(item.removeprefix("!"))
        for items, test in ((wanted, ""), (unwanted, "NOT ")):
            if items:
                placeholder = arg(items)
                where.append(
                    f"{test}(s.org_id::text = ANY({placeholder}::text[]) OR "
                    f"og.uuid::text = ANY({placeholder}::text[]))"
                )
    include_uuid = str(filters.get("includeUuid", "")).lower() in ("1", "true")
    async with uow.driver() as conn:
        rows = await conn.fetch(
            "SELECT s.*, a.value1, a.value2, a.uuid AS attribute_uuid, e.uuid AS event_uuid, "  # noqa: S608 - placeholders only
            "og.id AS og_id, og.uuid AS og_uuid, og.name AS og_name FROM sightings s "
            "JOIN attributes a ON a.id = s.attribute_id JOIN events e ON e.id = s.event_id "
            "LEFT JOIN objects o ON o.id = a.object_id "
            "LEFT JOIN organisations og ON og.id = s.org_id "
            f"WHERE {' AND '.join(where)} ORDER BY s.id",
            *args,
        )
    found = []
    for row in rows:
        sighting = _sighting_json(row)
        sighting["value"] = f"{row['value1']}|{row['value2']}" if row["value2"] else row["value1"]
        if include_uuid:
            sighting["attribute_uuid"] = str(row["attribute_uuid"])
            sighting["event_uuid"] = str(row["event_uuid"])
        if row["og_id"] is not None:
            sighting["Organisation"] = {"id": str(row["og_id"]), "uuid": str(row["og_uuid"]),
                                        "name": row["og_name"]}  # fmt: skip
        found.append({"Sighting": sighting})
    return {"response": found}
