"""MISP's server routes, as PyMISP calls them (``add_server``, ``servers``, ``test_server``,
``server_pull``, ``server_push``), and the jobs a pull or a push starts
(``GET /sync/jobs/{id}``)."""

from __future__ import annotations

import json
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Path, Query

from tessera.common.deps import UoW, resource
from tessera.common.problems import Problem
from tessera.sync import exchange
from tessera.sync.api.common import DENIED, PROBLEM, Me, SyncSettings, flag
from tessera.sync.api.events import misp_routes
from tessera.sync.crypto import HINTED, KeyBox, UnreadableKey
from tessera.sync.service import pull, push, servers
from tessera.sync.wire import render_org

__all__ = ["router"]

router = APIRouter(prefix="/sync", tags=["MISP servers and sync jobs"])
Keys = Annotated[KeyBox, Depends(resource(KeyBox))]
NOT_FOUND: dict[str, Any] = {"description": "no such server", **PROBLEM}
ServerId = Annotated[int, Path(ge=1, le=2**62, description="the server's id")]
_EXAMPLE = {
    "name": "Partner CERT",
    "url": "https://misp.partner.example",
    "authkey": "<the key of our sync user there>",
    "Organisation": {"uuid": "5f6e1a2b-3c4d-4e5f-8a9b-0c1d2e3f4a5b", "name": "Partner"},
    "pull": True,
    "push": False,
    "pull_rules": {"tags": {"OR": ["tlp:white"], "NOT": []}, "orgs": {"OR": [], "NOT": []}},
}


_EDIT_EXAMPLES: dict[str, Any] = {
    "stop pulling": {"value": {"pull": False}},
    "a new key": {"value": {"authkey": "<the new key>"}},
}


class InvalidServer(Problem):
    status = 403
    code = "invalid_server"
    title = "The server could not be saved."


class UnknownTechnique(Problem):
    status = 400
    code = "unknown_technique"
    title = "Pull everything (full, update) or one event by its uuid."


def _rules(value: Any, field: str) -> dict[str, Any]:
    if value in (None, ""):
        return {}
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise InvalidServer(errors=[{"field": field, "in": "body", "type": "json",
                                         "message": "not JSON"}]) from None  # fmt: skip
    if not isinstance(value, dict):
        raise InvalidServer(errors=[{"field": field, "in": "body", "type": "object",
                                     "message": "an object of rules"}])  # fmt: skip
    return value


_FLAGS = ("push", "pull", "push_sightings", "internal", "unpublish_event",
          "publish_without_email", "self_signed", "allow_private_addresses")  # fmt: skip


def _server_in(body: dict[str, Any], *, editing: bool = False) -> dict[str, Any]:
    """What ``servers/add`` takes, in MISP's spellings (``Server`` wrapper or not); with
    ``editing``, what ``servers/edit`` changes: only the fields sent. An empty ``authkey``
    keeps the key, as MISP's edit form does, and so does the hint ``servers/index`` shows
    instead of the key (PyMISP's ``update_server`` sends back what it read)."""
    body = body.get("Server", body)
    if not isinstance(body, dict):
        raise InvalidServer(errors=[{"field": "Server", "in": "body", "type": "object",
                                     "message": "an object of the server's fields"}])  # fmt: skip
    required = ("name", "url") if editing else ("name", "url", "authkey")
    sent = [f for f in required if not editing or f in body]
    missing = [f for f in sent if not str(body.get(f) or "").strip()]
    url = str(body.get("url") or "")
    if "url" in sent and "url" not in missing and not url.startswith(("http://", "https://")):
        missing.append("url")
    if missing:
        raise InvalidServer(
            f"invalid: {', '.join(missing)}",
            errors=[{"field": f, "in": "body", "type": "value_error",
                     "message": "required" if f != "url" else "an http(s) URL"}
                    for f in missing],
        )  # fmt: skip
    out: dict[str, Any] = {}
    if "name" in sent:
        out["name"] = str(body["name"])[:255]
    if "url" in sent:
        out["url"] = url[:1024]
    authkey = str(body.get("authkey") or "").strip()
    if authkey and not (editing and authkey.startswith(HINTED)):
        out["authkey"] = authkey
    remote = body.get("Organisation") or body.get("RemoteOrg")
    if remote is None and body.get("remote_org_uuid"):
        remote = {"uuid": body["remote_org_uuid"], "name": body.get("remote_org_name")}
    if remote is not None:
        try:
            remote = {"uuid": uuid.UUID(str(remote.get("uuid"))), "name": remote.get("name")}
        except (AttributeError, ValueError):
            error = {"field": "Organisation.uuid", "in": "body", "type": "uuid",
                     "message": "not a uuid"}  # fmt: skip
            raise InvalidServer(errors=[error]) from None
    if remote is not None or not editing:
        out["remote_org"] = remote
    out |= {f: flag(body.get(f)) for f in _FLAGS if not editing or f in body}
    out |= {f: _rules(body.get(f), f) for f in ("pull_rules", "push_rules")
            if not editing or f in body}  # fmt: skip
    if not editing or "priority" in body:
        out["priority"] = _priority(body.get("priority"))
    return out


def _priority(value: Any) -> int:
    try:
        priority = int(value or 0)
    except (TypeError, ValueError):
        priority = -1
    if not 0 <= priority <= 2**31 - 1:
        raise InvalidServer(errors=[{"field": "priority", "in": "body", "type": "int",
                                     "message": "a whole number from 0"}])  # fmt: skip
    return priority


def _server_out(server: dict[str, Any], keys: KeyBox) -> dict[str, Any]:
    """A server as ``servers/index`` shows it: never its key (a hint of it)."""
    try:
        hint = keys.hint(keys.open(server["authkey"]))
    except UnreadableKey:  # sealed under another SYNC__SERVER_KEY
        hint = "(unreadable)"
    out = {
        "Server": {
            "id": str(server["id"]), "name": server["name"], "url": server["url"],
            "authkey": hint, "org_id": str(server["org_id"]),
            "remote_org_id": str(server["remote_org_id"] or 0),
            "push": server["push"], "pull": server["pull"],
            "push_sightings": server["push_sightings"],
            "pull_rules": json.dumps(server["pull_rules"]),
            "push_rules": json.dumps(server["push_rules"]),
            "internal": server["internal"], "self_signed": server["self_signed"],
            "unpublish_event": server["unpublish_event"],
            "publish_without_email": server["publish_without_email"],
            "allow_private_addresses": server["allow_private_addresses"],
            "priority": str(server["priority"]),
        },
        "Organisation": render_org(
            {"id": server["org_id"], "name": server["org_name"], "uuid": server["org_uuid"]},
            with_local=False,
        ),
    }  # fmt: skip
    if server["remote_org_id"] is not None:
        out["RemoteOrg"] = render_org(
            {"id": server["remote_org_id"], "name": server["remote_org_name"],
             "uuid": server["remote_org_uuid"]},
            with_local=False,
        )  # fmt: skip
    return out


@router.post(
    "/servers/add",
    summary="Add a remote server (site admins): its key is stored encrypted",
    responses={403: DENIED},
)
async def add_server(
    me: Me,
    uow: UoW,
    keys: Keys,
    settings: SyncSettings,
    body: Annotated[dict[str, Any], Body(openapi_examples={"a partner": {"value": _EXAMPLE}})],
) -> dict[str, Any]:
    wanted = _server_in(body)
    remote = wanted["remote_org"]
    # as MISP's ServersController: `internal` only for a link to the host organisation itself
    wanted["internal"] = wanted["internal"] and (
        remote is not None and remote["uuid"] == settings.host_org_uuid
    )
    return _server_out(await servers.add_server(uow, wanted, me, keys), keys)


@misp_routes(
    router,
    "/servers/edit/{server_id}",
    ["POST", "PUT"],
    named_suffix=False,
    json_suffix=False,
    summary="Change a remote server (site admins): only the fields sent; an empty key keeps it",
    responses={403: DENIED, 404: NOT_FOUND},
)
async def edit_server(
    server_id: ServerId,
    me: Me,
    uow: UoW,
    keys: Keys,
    settings: SyncSettings,
    body: Annotated[dict[str, Any], Body(openapi_examples=_EDIT_EXAMPLES)],
) -> dict[str, Any]:
    changes = _server_in(body, editing=True)
    edited = await servers.edit_server(
        uow, server_id, changes, me, keys, host_org_uuid=settings.host_org_uuid
    )
    return _server_out(edited, keys)


@misp_routes(
    router,
    "/servers/delete/{server_id}",
    ["POST", "DELETE"],
    named_suffix=False,
    json_suffix=False,
    summary="Remove a remote server (site admins): its jobs stay, its events stay here",
    responses={403: DENIED, 404: NOT_FOUND},
)
async def delete_server(server_id: ServerId, me: Me, uow: UoW) -> dict[str, Any]:
    await servers.delete_server(uow, server_id, me)
    message = "Server deleted"
    return {"saved": True, "success": True, "name": message, "message": message,
            "url": f"/servers/delete/{server_id}", "id": str(server_id)}  # fmt: skip


@router.get("/servers/index", summary="The remote servers (site admins)", responses={403: DENIED})
async def list_servers(
    me: Me,
    uow: UoW,
    keys: Keys,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
) -> list[dict[str, Any]]:
    rows = await servers.list_servers(uow, me, limit=limit, offset=(page - 1) * limit)
    return [_server_out(r, keys) for r in rows]


@misp_routes(
    router,
    "/servers/testConnection/{server_id}",
    ["GET", "POST"],
    named_suffix=False,
    json_suffix=False,
    summary="Whether the remote answers as MISP and knows our key (MISP's status codes)",
    responses={403: DENIED, 404: NOT_FOUND},
)
async def test_connection(server_id: ServerId, me: Me, uow: UoW, keys: Keys) -> dict[str, Any]:
    return await servers.test_connection(uow, server_id, me, keys)


def _job_answer(job_id: uuid.UUID, what: str) -> dict[str, Any]:
    return {
        "message": f"{what} queued for background execution. Job ID: {job_id}",
        "job_id": str(job_id),
        "url": f"/sync/jobs/{job_id}",
    }


@misp_routes(
    router,
    "/servers/pull/{server_id}",
    ["GET", "POST"],
    named_suffix=False,
    json_suffix=False,
    summary="Pull from the server: answers at once with the job it started",
    responses={403: DENIED, 404: NOT_FOUND},
)
async def pull_all(server_id: ServerId, me: Me, uow: UoW) -> dict[str, Any]:
    return _job_answer(await pull.start_pull(uow, server_id, me), "Pull")


@misp_routes(
    router,
    "/servers/pull/{server_id}/{technique}",
    ["GET", "POST"],
    named_suffix=False,
    json_suffix=False,
    summary="Pull one event (its uuid), or everything (`full`, `update`)",
    responses={
        400: {"description": "neither `full`, `update` nor an event uuid", **PROBLEM},
        403: DENIED,
        404: NOT_FOUND,
    },
)
async def pull_some(
    server_id: ServerId,
    technique: Annotated[str, Path(max_length=64)],
    me: Me,
    uow: UoW,
) -> dict[str, Any]:
    event_uuid = None
    if technique not in ("full", "update", "incremental"):
        try:
            event_uuid = uuid.UUID(technique)
        except ValueError:
            raise UnknownTechnique(
                errors=[{"field": "technique", "in": "path", "type": "uuid",
                         "message": "full, update, or an event uuid"}],
            ) from None  # fmt: skip
    return _job_answer(await pull.start_pull(uow, server_id, me, event_uuid=event_uuid), "Pull")


@misp_routes(
    router,
    "/servers/push/{server_id}",
    ["GET", "POST"],
    named_suffix=False,
    json_suffix=False,
    summary="Push to the server: answers at once with the job it started",
    responses={403: DENIED, 404: NOT_FOUND},
)
async def push_all(server_id: ServerId, me: Me, uow: UoW) -> dict[str, Any]:
    return _job_answer(await push.start_push(uow, server_id, me), "Push")


@misp_routes(
    router,
    "/servers/push/{server_id}/{technique}",
    ["GET", "POST"],
    named_suffix=False,
    json_suffix=False,
    summary="Push one event (its id or uuid), or everything (`full`, `incremental`)",
    responses={
        400: {"description": "neither `full`, `incremental` nor an event here", **PROBLEM},
        403: DENIED,
        404: NOT_FOUND,
    },
)
async def push_some(
    server_id: ServerId,
    technique: Annotated[str, Path(max_length=64)],
    me: Me,
    uow: UoW,
) -> dict[str, Any]:
    event_uuid = None
    if technique not in ("full", "incremental"):
        event_uuid = await servers.event_uuid_of(uow, technique)
        if event_uuid is None:
            raise UnknownTechnique(
                title="Push everything (full, incremental) or one event by its id or uuid.",
                errors=[{"field": "technique", "in": "path", "type": "event",
                         "message": "full, incremental, or an event's id or uuid here"}],
            )  # fmt: skip
    return _job_answer(await push.start_push(uow, server_id, me, event_uuid=event_uuid), "Push")


@router.get(
    "/jobs/{job_id}",
    summary="A pull's, push's or feed fetch's progress: seen, skipped, fetched, pushed, failed",
    responses={403: DENIED, 404: {"description": "no such job", **PROBLEM}},
)
async def job(job_id: uuid.UUID, me: Me, uow: UoW) -> dict[str, Any]:
    servers.require_site_admin(me)
    async with uow.driver() as conn:
        row = await exchange.job(conn, job_id)
    if row is None:
        raise Problem(status=404, code="job_not_found", title="No such job")
    return {k: (str(v) if isinstance(v, uuid.UUID) else v) for k, v in dict(row).items()}
