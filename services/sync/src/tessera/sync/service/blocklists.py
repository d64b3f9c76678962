"""MISP's event and organisation blocklists (``eventBlocklists/*``, ``orgBlocklists/*``, as
``BlockListComponent`` serves them): an event uuid listed never comes in (pull, push to us,
feed, ``events/add``), nor does any event an organisation listed created. Listing does not
delete what is here already, as in MISP.

Who may: the organisation blocklist is the site admins'; the event blocklist also the users
of the host organisation (``SYNC__HOST_ORG_UUID``) who may add events, as MISP's ACL has it
(``host_org_user`` and ``perm_add``)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from tessera.common.db import UnitOfWork, driver_in_transaction
from tessera.common.problems import Problem
from tessera.sync.store.blocklists import EVENTS, ORGS, Blocklist
from tessera.sync.viewer import Viewer

from .problems import NotPermitted

__all__ = ["EVENTS", "ORGS", "add", "delete", "edit", "listed", "may_manage"]

Json = dict[str, Any]
LIMITS = {"comment": 65_535, "event_info": 65_535, "event_orgc": 255, "org_name": 255}


class EntryNotFound(Problem):
    status = 404
    code = "misp_blocklist_entry_not_found"
    title = "Blocklist item not found."


def may_manage(kind: Blocklist, viewer: Viewer, host_org_uuid: UUID | None) -> bool:
    if viewer.site_admin:
        return True
    return kind is EVENTS and viewer.may_add and viewer.org_uuid == host_org_uuid


def _require(kind: Blocklist, viewer: Viewer, host_org_uuid: UUID | None) -> None:
    if not may_manage(kind, viewer, host_org_uuid):
        raise NotPermitted()


def rendered(kind: Blocklist, row: Any) -> Json:
    """An entry as MISP's REST index shows it (flat; ``edit`` wraps it in the model's name)."""
    out: Json = {"id": str(row["id"]), kind.target: str(row[kind.target])}
    out |= {f: row[f] or "" for f in kind.fields}
    out["date_created"] = row["created_at"].astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")
    return out


def _values(kind: Blocklist, body: Json) -> dict[str, str]:
    return {f: str(body[f])[: LIMITS[f]] for f in kind.fields if body.get(f) not in (None, "")}


async def listed(
    uow: UnitOfWork,
    kind: Blocklist,
    viewer: Viewer,
    *,
    host_org_uuid: UUID | None,
    limit: int,
    offset: int,
) -> list[Json]:
    _require(kind, viewer, host_org_uuid)
    async with uow.driver() as conn:
        rows = await kind.page(conn, limit=limit, offset=offset)
    return [rendered(kind, r) for r in rows]


async def add(
    uow: UnitOfWork, kind: Blocklist, viewer: Viewer, body: Json, *, host_org_uuid: UUID | None
) -> Json:
    """``uuids`` (a list, or one per line) with the fields every entry takes; what is not a
    uuid, or is listed already, fails; the rest is saved, in one transaction."""
    _require(kind, viewer, host_org_uuid)
    raw = body.get("uuids")
    wanted = raw.strip().splitlines() if isinstance(raw, str) else raw
    if not isinstance(wanted, list) or not wanted:
        raise Problem(
            status=400, code="misp_blocklist_uuids",
            title='Pass a list of uuids via the "uuids" key in the request object.',
            errors=[{"field": "uuids", "in": "body", "type": "list",
                     "message": "a list of uuids, or one uuid per line"}],
        )  # fmt: skip
    values = _values(kind, body)
    successes: list[str] = []
    fails: list[str] = []
    now = datetime.now(UTC)
    async with uow:
        conn = await driver_in_transaction(uow.session)
        for item in wanted:
            text = str(item).strip()
            try:
                uuid = UUID(text) if len(text) == 36 else None
            except ValueError:
                uuid = None
            if uuid is not None and await kind.add(conn, uuid, values, now):
                successes.append(text)
            else:
                fails.append(text)
        await uow.commit()
    message = (f"Done. Added {len(successes)} new entries to the blocklist. "
               f"{len(fails)} entries could not be saved.")  # fmt: skip
    return {"result": {"successes": successes, "fails": fails}, "message": message}


def _ident(raw: str) -> int | UUID:
    text = raw.strip()
    if text.isascii() and text.isdigit() and len(text) < 19:
        return int(text)
    try:
        return UUID(text)
    except ValueError:
        raise EntryNotFound() from None


async def edit(
    uow: UnitOfWork,
    kind: Blocklist,
    viewer: Viewer,
    ident: str,
    body: Json,
    *,
    host_org_uuid: UUID | None,
) -> Json:
    """The fields sent (not the uuid); the entry by its id or its uuid."""
    _require(kind, viewer, host_org_uuid)
    async with uow:
        conn = await driver_in_transaction(uow.session)
        row = await kind.find(conn, _ident(ident))
        if row is None:
            raise EntryNotFound()
        await kind.update(conn, row["id"], _values(kind, body))
        row = await kind.find(conn, row["id"])
        await uow.commit()
    return {kind.model: rendered(kind, row)}


async def delete(
    uow: UnitOfWork, kind: Blocklist, viewer: Viewer, ident: str, *, host_org_uuid: UUID | None
) -> Json:
    """The entry goes: what it kept out may come in again (at the next pull, say)."""
    _require(kind, viewer, host_org_uuid)
    async with uow:
        conn = await driver_in_transaction(uow.session)
        row = await kind.find(conn, _ident(ident))
        if row is None:
            raise EntryNotFound(title="Invalid blocklist entry")
        await kind.delete(conn, row["id"])
        await uow.commit()
    message = "Blocklist entry removed"
    return {"saved": True, "success": True, "name": message, "message": message,
            "url": f"/{kind.controller}/delete/{ident}", "id": ident}  # fmt: skip
