"""MISP's sharing-group routes (``SharingGroupsController``), as PyMISP calls them:
``sharing_groups``, ``get_sharing_group``, ``sharing_group_exists``, ``add_sharing_group``,
``update_sharing_group``, ``delete_sharing_group``, ``add_org_to_sharing_group``,
``remove_org_from_sharing_group``, ``add_server_to_sharing_group`` and
``remove_server_from_sharing_group``.

Who may (``SharingGroup::checkIfAuthorised``, ``checkIfAuthorisedExtend``, ``checkIfOwner``):

* view: a site admin, the owning organisation, a member organisation, anyone when this
  instance is among the group's servers with "all organisations";
* create, and change (edit, add or remove organisations and servers): a role with
  ``perm_sharing_group`` (site admin, org admin, sync user) of the owning organisation, or of
  a member organisation flagged ``extend``; a site admin any group. The group's own fields
  (name, releasability, description, roaming) only its owner or a site admin;
* delete: ``perm_sharing_group`` of the owning organisation, or a site admin, and only a
  group nothing uses (no event, attribute, object, report or feed), as
  ``SharingGroup::beforeDelete``.

Where this parts from MISP (on purpose): a group made here is ``local``; a creator who is no
site admin and did not list their organisation gets it as a member with ``extend`` (MISP's
REST ``add`` refuses such a group, its web form always lists the creator); a uuid already
here is refused on ``add`` (MISP would edit that group); server 0 (this instance) can be
added and removed by id."""

from __future__ import annotations

import uuid as uuid_module
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from tessera.common.db import UnitOfWork, driver_in_transaction
from tessera.common.problems import Problem
from tessera.sync import access, directory, store
from tessera.sync.store import sharing_groups as groups
from tessera.sync.viewer import Viewer

from .problems import NotAllowed, NotPermitted, SaveFailed

__all__ = [
    "add",
    "add_org",
    "add_server",
    "clean_text",
    "delete",
    "edit",
    "exists",
    "index",
    "may_change",
    "remove_org",
    "remove_server",
    "view",
]

Json = dict[str, Any]
Conn = Any
NOT_VISIBLE = "Sharing group doesn't exist or you do not have permission to access it."
FIELDS = ("name", "releasability", "description", "roaming")
"""what an edit may change of the group itself (``SharingGroup::captureSGExisting``)"""
_TEXT_LIMIT = 65_535


class SharingGroupNotFound(Problem):
    status = 404
    code = "misp_invalid_sharing_group"
    title = "Invalid sharing group."


def flag(value: Any) -> bool:
    return str(value).strip().lower() in ("1", "true", "yes", "on")


def _sg_permission(viewer: Viewer) -> bool:
    return viewer.site_admin or viewer.permissions()["perm_sharing_group"]


async def may_change(conn: Conn, viewer: Viewer, group: Any) -> bool:
    """``SharingGroup::checkIfAuthorisedExtend``."""
    if viewer.site_admin:
        return True
    if not _sg_permission(viewer):
        return False
    if group["org_id"] == viewer.org_id:
        return True
    link = await groups.member(conn, group["id"], viewer.org_id)
    return link is not None and bool(link["extend"])


async def _may_view(conn: Conn, viewer: Viewer, group: Any) -> bool:
    view = (await store.sharing_group_views(conn, [group["id"]]))[group["id"]]
    return access.may_use_sharing_group(viewer, view)


async def _rendered(conn: Conn, ids: list[int], base_url: str) -> dict[int, Json]:
    """Each group as MISP's ``view`` answers it: ``SharingGroup``, its ``Organisation``,
    ``SharingGroupOrg`` and ``SharingGroupServer`` side by side."""
    flat = await store.rendered_sharing_groups(conn, ids, base_url=base_url)
    shaped = {}
    for gid, group in flat.items():
        group = dict(group)
        owner = group.pop("Organisation")
        members = group.pop("SharingGroupOrg")
        servers = group.pop("SharingGroupServer")
        for server in servers:
            if server["server_id"] == str(access.LOCAL_SERVER_ID):
                server["Server"] = {"id": "0", "name": "Local instance", "url": base_url}
        shaped[gid] = {
            "SharingGroup": group,
            "Organisation": owner,
            "SharingGroupOrg": members,
            "SharingGroupServer": servers,
        }
    return shaped


async def _visible_group(conn: Conn, viewer: Viewer, ident: str) -> Any:
    group = await groups.find(conn, ident)
    if group is None or not await _may_view(conn, viewer, group):
        raise NotAllowed(title=NOT_VISIBLE)
    return group


async def exists(uow: UnitOfWork, viewer: Viewer, ident: str) -> bool:
    """``HEAD sharing_groups/view``: a group the viewer may view."""
    async with uow.driver() as conn:
        group = await groups.find(conn, ident)
        return group is not None and await _may_view(conn, viewer, group)


async def view(uow: UnitOfWork, viewer: Viewer, ident: str, *, base_url: str) -> Json:
    async with uow.driver() as conn:
        group = await _visible_group(conn, viewer, ident)
        return (await _rendered(conn, [int(group["id"])], base_url))[int(group["id"])]


def _org_filters(raw: Any) -> tuple[list[str], list[str]]:
    wanted, unwanted = [], []
    for part in str(raw).split("|"):
        part = part.strip()
        if part.startswith("!"):
            unwanted.append(part[1:])
        elif part:
            wanted.append(part)
    return wanted, unwanted


async def index(
    uow: UnitOfWork,
    viewer: Viewer,
    *,
    passive: bool,
    value: str | None,
    searchorg: str | None,
    limit: int,
    page: int,
    base_url: str,
) -> tuple[list[Json], int]:
    """The groups the viewer may view, active ones (or, ``passive``, the inactive ones), by
    name, a page of them and how many there are in all; each with ``editable`` and
    ``deletable`` as MISP's index marks them."""
    async with uow.driver() as conn:
        org_ids: list[int] = []
        not_org_ids: list[int] = []
        if searchorg:
            wanted, unwanted = _org_filters(searchorg)
            for raw, into in [(w, org_ids) for w in wanted] + [(u, not_org_ids) for u in unwanted]:
                org = await groups.find_org(conn, raw)
                if org is not None:
                    into.append(int(org["id"]))
            if wanted and not org_ids:
                return [], 0  # MISP: no organisation found, no group
        ids, total = await groups.page(
            conn, viewer, active=not passive, value=value, org_ids=org_ids,
            not_org_ids=not_org_ids, limit=limit, offset=(page - 1) * limit,
        )  # fmt: skip
        rendered = await _rendered(conn, ids, base_url)
    perm = _sg_permission(viewer)
    entries = []
    for gid in ids:
        entry = rendered[gid]
        entry["SharingGroup"]["org_count"] = str(len(entry["SharingGroupOrg"]))
        owner = entry["Organisation"]["uuid"] == str(viewer.org_uuid)
        editable = deletable = viewer.site_admin or (perm and owner)
        if not editable and perm:
            editable = any(
                m["extend"] and m["org_id"] == str(viewer.org_id) for m in entry["SharingGroupOrg"]
            )
        entries.append(entry | {"editable": editable, "deletable": deletable})
    return entries, total


def _payload(body: Any) -> Json:
    """MISP's spellings: ``{"SharingGroup": {...}}``, ``{"request": ...}`` or the fields."""
    if isinstance(body, dict) and isinstance(body.get("request"), dict):
        body = body["request"]
    if isinstance(body, dict) and isinstance(body.get("SharingGroup"), dict):
        inner = dict(body["SharingGroup"])
        for key in ("SharingGroupOrg", "SharingGroupServer", "Organisation"):
            if key in body and key not in inner:
                inner[key] = body[key]
        return inner
    return body if isinstance(body, dict) else {}


def _fail(action: str, errors: Any, ident: str | None = None) -> SaveFailed:
    return SaveFailed(
        controller="SharingGroup", action=action, model="SharingGroup", errors=errors, ident=ident
    )


def _fields(body: Json, *, action: str, ident: str | None = None) -> Json:
    """The group's own fields the body sets, checked."""
    values: Json = {}
    errors: dict[str, list[str]] = {}
    for name in ("name", "releasability", "description"):
        if name not in body or body[name] is None:
            continue
        if not isinstance(body[name], str | int | float):
            errors[name] = ["This field must be text."]
            continue
        text = str(body[name]).strip()
        limit = 255 if name == "name" else _TEXT_LIMIT
        if not groups.storable(text) or len(text) > limit:
            errors[name] = [f"At most {limit} characters of valid text, no NUL."]
        else:
            values[name] = text
    if "name" in values and not values["name"]:
        errors["name"] = ["This field cannot be left empty."]
    for name in ("active", "roaming"):
        if name in body and body[name] is not None:
            values[name] = flag(body[name])
    if errors:
        raise _fail(action, errors, ident)
    return values


def clean_text(text: str) -> str:
    """The text without what PostgreSQL refuses (NUL, lone surrogates)."""
    return text.replace("\x00", "").encode("utf-8", "ignore").decode("utf-8")


def _member_ref(item: Any) -> tuple[Any, Any, str | None, bool]:
    """``(id, uuid, name, extend)`` of a ``SharingGroupOrg`` entry, in any of MISP's shapes."""
    if not isinstance(item, dict):
        return item, None, None, False
    org = item.get("Organisation")
    if isinstance(org, list) and org:
        org = org[0]
    org = org if isinstance(org, dict) else item
    org_id = org.get("id") if org is not item else item.get("org_id", item.get("id"))
    name = org.get("name")
    shown = clean_text(str(name))[:255] if name else None
    return org_id, org.get("uuid"), shown or None, flag(item.get("extend"))


async def _capture_orgs(
    conn: Conn, group_id: int, items: Any, *, action: str, now: datetime
) -> set[int]:
    """Add or update the listed organisations (by id, or uuid: an unknown uuid is added as
    an organisation of another instance, as ``Organisation::captureOrg``); their ids."""
    if items is None:
        return set()
    if isinstance(items, dict):
        items = [items]
    if not isinstance(items, list):
        raise _fail(action, {"SharingGroupOrg": ["A list of organisations."]})
    found: set[int] = set()
    for index, item in enumerate(items):
        org_id, org_uuid, name, extend = _member_ref(item)
        local = None
        if org_uuid is not None:
            key = groups.ident(org_uuid)
            if isinstance(key, uuid_module.UUID):
                local = await directory.ensure_organisation(conn, key, name or str(key), now)
        elif org_id is not None:
            org = await groups.find_org(conn, org_id)
            local = None if org is None else int(org["id"])
        if local is None:
            raise _fail(action, {f"SharingGroupOrg.{index}": ["Invalid organisation."]})
        await groups.add_org(conn, group_id, local, extend=extend)
        found.add(local)
    return found


async def _capture_servers(conn: Conn, group_id: int, items: Any, *, action: str) -> int:
    """Add or update the listed servers (by id, url or name; 0 is this instance)."""
    if items is None:
        return 0
    if isinstance(items, dict):
        items = [items]
    if not isinstance(items, list):
        raise _fail(action, {"SharingGroupServer": ["A list of servers."]})
    for index, item in enumerate(items):
        server = item.get("Server") if isinstance(item, dict) else None
        server = server[0] if isinstance(server, list) and server else server
        if isinstance(server, dict):
            raw = server.get("id", server.get("url"))
        else:
            raw = item.get("server_id", item.get("id")) if isinstance(item, dict) else item
        server_id = await groups.find_server(conn, raw)
        if server_id is None:
            raise _fail(action, {f"SharingGroupServer.{index}": ["Invalid Server."]})
        all_orgs = flag(item.get("all_orgs")) if isinstance(item, dict) else False
        await groups.set_server(conn, group_id, server_id, all_orgs=all_orgs)
    return len(items)


async def add(uow: UnitOfWork, viewer: Viewer, body: Any, *, base_url: str) -> Json:
    """``sharingGroups/add``: the group with its organisations and servers (a group that does
    not roam and names no server gets this instance, as MISP's REST ``add``); answered as
    ``view`` shows it."""
    if not _sg_permission(viewer):
        raise NotPermitted()
    data = _payload(body)
    values = _fields(data, action="add")
    if not values.get("name"):
        raise _fail("add", {"name": ["This field cannot be left empty."]})
    key = groups.ident(data.get("uuid")) if data.get("uuid") else uuid_module.uuid4()
    if not isinstance(key, uuid_module.UUID):
        raise _fail("add", {"uuid": ["Not a valid uuid."]})
    values = {"releasability": "", "description": "", "active": True, "roaming": False} | values
    now = datetime.now(UTC)
    async with uow:
        conn = await driver_in_transaction(uow.session)
        group_id = await groups.insert(conn, values | {"uuid": key}, org_id=viewer.org_id, now=now)
        if not group_id:
            raise _fail("add", {"uuid": ["A sharing group with this uuid exists already."]})
        members = await _capture_orgs(
            conn, group_id, data.get("SharingGroupOrg"), action="add", now=now
        )
        if not viewer.site_admin and viewer.org_id not in members:
            await groups.add_org(conn, group_id, viewer.org_id, extend=True)
        listed = 0 if values["roaming"] else await _capture_servers(
            conn, group_id, data.get("SharingGroupServer"), action="add"
        )  # fmt: skip
        if not values["roaming"] and not listed:
            await groups.add_server(conn, group_id, access.LOCAL_SERVER_ID, all_orgs=False)
        await uow.commit()
    async with uow.driver() as conn:
        return (await _rendered(conn, [group_id], base_url))[group_id]


async def _changeable(conn: Conn, viewer: Viewer, ident: str) -> Any:
    group = await groups.find(conn, ident)
    if group is None:
        return None
    return group if await may_change(conn, viewer, group) else False


async def edit(uow: UnitOfWork, viewer: Viewer, ident: str, body: Any, *, base_url: str) -> Json:
    """``sharing_groups/edit``: the owner (or a site admin) changes the group's name,
    releasability, description and roaming; whoever may extend it adds organisations and
    servers, or changes their ``extend``/``all_orgs`` (none is removed: that is ``removeOrg``
    and ``removeServer``), as MISP's REST edit captures the group."""
    if not _sg_permission(viewer):
        raise NotPermitted()
    data = _payload(body)
    now = datetime.now(UTC)
    async with uow:
        conn = await driver_in_transaction(uow.session)
        group = await _changeable(conn, viewer, ident)
        if group is None:
            raise SharingGroupNotFound()
        if group is False:
            raise NotAllowed(title="Action not allowed.")
        group_id = int(group["id"])
        values = _fields(data, action="edit", ident=ident)
        if viewer.site_admin or group["org_id"] == viewer.org_id:
            await groups.update(
                conn, group_id, {k: v for k, v in values.items() if k in FIELDS}, now=now
            )
        await _capture_orgs(conn, group_id, data.get("SharingGroupOrg"), action="edit", now=now)
        await _capture_servers(conn, group_id, data.get("SharingGroupServer"), action="edit")
        await uow.commit()
    async with uow.driver() as conn:
        return (await _rendered(conn, [group_id], base_url))[group_id]


async def delete(uow: UnitOfWork, viewer: Viewer, ident: str) -> Json:
    """``sharingGroups/delete``: its owner or a site admin (with ``perm_sharing_group``, as
    MISP's ACL wants); refused while anything uses it."""
    if not _sg_permission(viewer):
        raise NotPermitted()
    async with uow:
        conn = await driver_in_transaction(uow.session)
        group = await groups.find(conn, ident)
        if group is None or not (viewer.site_admin or group["org_id"] == viewer.org_id):
            raise NotAllowed(title="Action not allowed.")
        if await groups.in_use(conn, int(group["id"])):
            raise SaveFailed(
                controller="SharingGroups", action="delete", model="SharingGroup",
                errors="The sharing group could not be deleted.", ident=ident,
            )  # fmt: skip
        await groups.delete(conn, int(group["id"]))
        await uow.commit()
    message = "SharingGroup deleted"
    return {"saved": True, "success": True, "name": message, "message": message,
            "url": f"/SharingGroups/delete/{ident}", "id": ident}  # fmt: skip


def _quick_success(action: str, message: str) -> Json:
    return {"saved": True, "success": True, "name": message, "message": message,
            "url": f"/SharingGroup/{action}"}  # fmt: skip


async def _quick_group(conn: Conn, viewer: Viewer, ident: Any) -> Any:
    """``__initialiseSGQuickEdit``: the group named, one the viewer may extend."""
    if ident is None or str(ident).strip() == "":
        raise NotAllowed(title="No valid sharing group ID provided.")
    group = await _changeable(conn, viewer, str(ident))
    if not group:
        raise NotAllowed(title="Invalid sharing group or no editing rights.")
    return group


async def _quick_edit(
    uow: UnitOfWork,
    viewer: Viewer,
    group_ident: Any,
    *,
    action: str,
    find: Callable[[Conn], Awaitable[int | None]],
    missing: str,
    change: Callable[[Conn, int, int], Awaitable[bool]],
    refused: str,
    done: str,
) -> Json:
    """MISP's quick edits of a group's members (``addOrg``... ``removeServer``): the group
    one the viewer may extend, the member ``find`` names (``missing``: none), ``change``
    False when there is nothing to do (``refused``); the group's modification time moves."""
    if not _sg_permission(viewer):
        raise NotPermitted()
    async with uow:
        conn = await driver_in_transaction(uow.session)
        group = await _quick_group(conn, viewer, group_ident)
        member = await find(conn)
        if member is None:
            raise NotAllowed(title=missing)
        if not await change(conn, int(group["id"]), member):
            raise _fail(action, refused)
        await groups.update(conn, int(group["id"]), {}, now=datetime.now(UTC))
        await uow.commit()
    return _quick_success(action, done)


async def _org_id(conn: Conn, org_ident: Any) -> int | None:
    org = await groups.find_org(conn, org_ident)
    return None if org is None else int(org["id"])


async def add_org(
    uow: UnitOfWork, viewer: Viewer, group_ident: Any, org_ident: Any, *, extend: bool
) -> Json:
    async def add(conn: Conn, group_id: int, org_id: int) -> bool:
        if await groups.member(conn, group_id, org_id) is not None:
            return False
        await groups.add_org(conn, group_id, org_id, extend=extend)
        return True

    return await _quick_edit(
        uow, viewer, group_ident, action="addOrg", find=lambda c: _org_id(c, org_ident),
        missing="Invalid organisation.", change=add,
        refused="Organisation is already in the sharing group.",
        done="Organisation added to the sharing group.",
    )  # fmt: skip


async def remove_org(uow: UnitOfWork, viewer: Viewer, group_ident: Any, org_ident: Any) -> Json:
    """What the group shares stops being visible to the organisation at once."""
    return await _quick_edit(
        uow, viewer, group_ident, action="removeOrg", find=lambda c: _org_id(c, org_ident),
        missing="Invalid organisation.", change=groups.remove_org,
        refused="Organisation is not in the sharing group.",
        done="Organisation removed from the sharing group.",
    )  # fmt: skip


async def add_server(
    uow: UnitOfWork, viewer: Viewer, group_ident: Any, server_ident: Any, *, all_orgs: bool
) -> Json:
    async def add(conn: Conn, group_id: int, server_id: int) -> bool:
        return await groups.add_server(conn, group_id, server_id, all_orgs=all_orgs)

    return await _quick_edit(
        uow, viewer, group_ident, action="addServer",
        find=lambda c: groups.find_server(c, server_ident), missing="Invalid Server.",
        change=add, refused="Server is already in the sharing group.",
        done="Server added to the sharing group.",
    )  # fmt: skip


async def remove_server(
    uow: UnitOfWork, viewer: Viewer, group_ident: Any, server_ident: Any
) -> Json:
    return await _quick_edit(
        uow, viewer, group_ident, action="removeServer",
        find=lambda c: groups.find_server(c, server_ident), missing="Invalid Server.",
        change=groups.remove_server, refused="Server is not in the sharing group.",
        done="Server removed from the sharing group.",
    )  # fmt: skip
