"""Remote servers: added and listed by site admins (as in MISP), their keys sealed at rest,
and the connection test MISP's ``servers/testConnection`` runs."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from tessera.common.db import UnitOfWork, driver_in_transaction
from tessera.common.fetch import FetchError
from tessera.common.problems import Problem
from tessera.sync import directory, exchange
from tessera.sync.crypto import KeyBox, UnreadableKey
from tessera.sync.remote import Remote, RemoteError
from tessera.sync.viewer import Viewer

__all__ = [
    "ServerNotFound",
    "add_server",
    "called",
    "delete_server",
    "edit_server",
    "event_uuid_of",
    "list_servers",
    "remote_for",
    "server_called",
    "test_connection",
]


class SiteAdminOnly(Problem):
    status = 403
    code = "site_admin_only"
    title = "You don't have permission to access this location."


class ServerNotFound(Problem):
    status = 404
    code = "server_not_found"
    title = "Invalid server"


def require_site_admin(viewer: Viewer) -> None:
    if not viewer.site_admin:
        raise SiteAdminOnly()


async def add_server(
    uow: UnitOfWork, body: dict[str, Any], viewer: Viewer, keys: KeyBox
) -> dict[str, Any]:
    """MISP's ``servers/add``: the remote's URL and key, the remote organisation (by uuid,
    created here if unknown), push/pull flags, rules, ``internal``."""
    require_site_admin(viewer)
    now = datetime.now(UTC)
    async with uow:
        conn = await driver_in_transaction(uow.session)
        remote_org = body.get("remote_org")
        remote_org_id = None
        if remote_org is not None:
            remote_org_id = await directory.ensure_organisation(
                conn, UUID(str(remote_org["uuid"])), remote_org.get("name") or "remote", now
            )
        row = {
            "name": body["name"], "url": body["url"], "authkey": keys.seal(body["authkey"]),
            "org_id": viewer.org_id, "remote_org_id": remote_org_id,
            "push": body.get("push", False), "pull": body.get("pull", False),
            "push_sightings": body.get("push_sightings", False),
            "pull_rules": body.get("pull_rules") or {}, "push_rules": body.get("push_rules") or {},
            "internal": body.get("internal", False),
            "unpublish_event": body.get("unpublish_event", False),
            "publish_without_email": body.get("publish_without_email", False),
            "self_signed": body.get("self_signed", False),
            "allow_private_addresses": body.get("allow_private_addresses", False),
            "priority": body.get("priority", 0), "now": now,
        }  # fmt: skip
        server_id = await exchange.insert_server(conn, row)
        await uow.commit()
    async with uow.driver() as conn:
        found = await exchange.server(conn, server_id)
    assert found is not None
    return found


async def edit_server(
    uow: UnitOfWork,
    server_id: int,
    changes: dict[str, Any],
    viewer: Viewer,
    keys: KeyBox,
    *,
    host_org_uuid: UUID | None,
) -> dict[str, Any]:
    """MISP's ``servers/edit``: the fields sent, nothing else. A new key is sealed; a new URL
    forgets the index's ETag (another server's index); ``internal`` holds only while the
    remote organisation is the host organisation, as MISP's edit clears it otherwise."""
    require_site_admin(viewer)
    now = datetime.now(UTC)
    async with uow:
        conn = await driver_in_transaction(uow.session)
        found = await exchange.server(conn, server_id, lock=True)
        if found is None:
            raise ServerNotFound()
        columns = {k: v for k, v in changes.items() if k not in ("remote_org", "authkey")}
        if "authkey" in changes:
            columns["authkey"] = keys.seal(changes["authkey"])
        remote_org_uuid = found["remote_org_uuid"]
        remote = changes.get("remote_org")
        if remote is not None:
            columns["remote_org_id"] = await directory.ensure_organisation(
                conn, UUID(str(remote["uuid"])), remote.get("name") or "remote", now
            )
            remote_org_uuid = remote["uuid"]
        internal = columns.get("internal", found["internal"])
        if internal and (host_org_uuid is None or remote_org_uuid != host_org_uuid):
            columns["internal"] = False
        if "url" in columns and columns["url"] != found["url"]:
            columns["index_etag"] = None
        await exchange.update_server(conn, server_id, columns)
        await uow.commit()
    return await server_for(uow, server_id)


async def delete_server(uow: UnitOfWork, server_id: int, viewer: Viewer) -> None:
    """MISP's ``servers/delete``: the server goes. Its jobs stay in the history without it,
    the events it brought stay here (no longer marked as its), and a queued pull or push item
    of it finds it gone and is counted as failed."""
    require_site_admin(viewer)
    async with uow:
        conn = await driver_in_transaction(uow.session)
        if not await exchange.delete_server(conn, server_id):
            raise ServerNotFound()
        await uow.commit()


async def list_servers(uow: UnitOfWork, viewer: Viewer, *, limit: int, offset: int) -> list[Any]:
    require_site_admin(viewer)
    async with uow.driver() as conn:
        return await exchange.servers_page(conn, limit=limit, offset=offset)


async def server_for(uow: UnitOfWork, server_id: int) -> dict[str, Any]:
    async with uow.driver() as conn:
        found = await exchange.server(conn, server_id)
    if found is None:
        raise ServerNotFound()
    return found


async def event_uuid_of(uow: UnitOfWork, ident: str) -> UUID | None:
    """The uuid of the event here whose id or uuid is ``ident`` (MISP's push takes an id)."""
    async with uow.driver() as conn:
        if ident.isdigit() and len(ident) < 19:
            return await conn.fetchval("SELECT uuid FROM events WHERE id = $1", int(ident))
        try:
            found = UUID(ident)
        except ValueError:
            return None
        return await conn.fetchval("SELECT uuid FROM events WHERE uuid = $1", found)


async def called(
    uow: UnitOfWork,
    ref: str,
    *,
    row: Callable[[Any, int], Awaitable[dict[str, Any] | None]],
    ids_named: Callable[[Any, str], Awaitable[list[int]]],
    missing: type[Problem],
    noun: str,
) -> dict[str, Any]:
    """The row ``ref`` names: its id, else its name, which must be one row's (MISP's names
    are not unique). For operators (the CLI), who know their servers and feeds by name."""
    async with uow.driver() as conn:
        if ref.isascii() and ref.isdigit() and int(ref) < 2**62:
            found = await row(conn, int(ref))
            if found is not None:
                return found
        ids = await ids_named(conn, ref)
        if len(ids) > 1:
            listed = ", ".join(str(i) for i in ids)
            raise missing(f"{len(ids)} {noun}s are called {ref!r} (ids {listed}): give one")
        found = await row(conn, ids[0]) if ids else None
    if found is None:
        raise missing(f"no {noun} has the id or the name {ref!r}")
    return found


async def server_called(uow: UnitOfWork, ref: str) -> dict[str, Any]:
    """The server ``ref`` names (its id or its name)."""
    return await called(
        uow, ref, row=exchange.server, ids_named=exchange.server_ids_named,
        missing=ServerNotFound, noun="server",
    )  # fmt: skip


def remote_for(server: dict[str, Any], keys: KeyBox) -> Remote:
    """A client for the server, its key opened, its address policy the server entry's."""
    return Remote(
        server["url"],
        keys.open(server["authkey"]),
        allow_private=server["allow_private_addresses"],
        verify_tls=not server["self_signed"],
    )


async def test_connection(
    uow: UnitOfWork, server_id: int, viewer: Viewer, keys: KeyBox
) -> dict[str, Any]:
    """MISP's answer: ``status`` 1 when the remote answers as a MISP server and knows our
    key, with its version and who we are there; else a status and the reason."""
    require_site_admin(viewer)
    server = await server_for(uow, server_id)
    try:
        async with remote_for(server, keys) as remote:
            version = await remote.version()
            me = await remote.me()
    except RemoteError as exc:
        status = 3 if exc.status in (401, 403) else 2
        return {"status": status, "message": str(exc)}
    except FetchError as exc:
        return {"status": 2, "message": str(exc)}
    except UnreadableKey as exc:  # sealed under another SYNC__SERVER_KEY: set the key again
        return {"status": 3, "message": str(exc)}
    user = me.get("User", {})
    role = me.get("Role", {})
    return {
        "status": 1,
        "local_version": None,
        "version": version.get("version"),
        "mismatch": False,
        "newer": None,
        "post": True,
        "response_encoding": None,
        "request_encoding": version.get("request_encoding", []),
        "client_certificate": None,
        "uuid": None,
        "user": {
            "email": user.get("email"),
            "role_id": role.get("id"),
            "role_name": role.get("name"),
            "perm_sync": role.get("perm_sync"),
            "perm_sighting": role.get("perm_sighting"),
        },
    }
