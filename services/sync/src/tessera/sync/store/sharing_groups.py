"""SQL of the sharing-group routes (``sharing_groups/*``): finding a group, the groups a user
may see, and changing a group's organisations and servers. Helpers never commit."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from tessera.sync import access
from tessera.sync.viewer import Viewer

__all__ = [
    "add_org",
    "add_server",
    "delete",
    "find",
    "find_org",
    "find_server",
    "in_use",
    "insert",
    "member",
    "page",
    "remove_org",
    "remove_server",
    "set_server",
    "storable",
    "update",
]

Conn = Any
_LOCAL = access.LOCAL_SERVER_ID


def storable(text: str) -> bool:
    """Whether PostgreSQL takes the text: no NUL, no lone surrogate (JSON's ``\\ud800``)."""
    if "\x00" in text:
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def ident(raw: Any) -> int | UUID | None:
    """An id or a uuid, as MISP reads either from a path or a body (None: neither)."""
    text = str(raw).strip() if raw is not None else ""
    if text.isascii() and text.isdigit() and len(text) < 19:
        return int(text)
    try:
        return UUID(text) if len(text) in (32, 36) else None
    except ValueError:
        return None


async def find(conn: Conn, raw: Any) -> Any:
    """The ``sharing_groups`` row for an id or a uuid (None when neither)."""
    key = ident(raw)
    if key is None:
        return None
    if isinstance(key, int):
        return await conn.fetchrow("SELECT * FROM sharing_groups WHERE id = $1", key)
    return await conn.fetchrow("SELECT * FROM sharing_groups WHERE uuid = $1", key)


async def find_org(conn: Conn, raw: Any) -> Any:
    """An organisation by id, uuid or name (``Organisation::fetchOrg``)."""
    if raw is None or str(raw).strip() == "" or not storable(str(raw)):
        return None
    key = ident(raw)
    if isinstance(key, int):
        return await conn.fetchrow("SELECT id, name, uuid FROM organisations WHERE id = $1", key)
    if isinstance(key, UUID):
        return await conn.fetchrow("SELECT id, name, uuid FROM organisations WHERE uuid = $1", key)
    return await conn.fetchrow(
        "SELECT id, name, uuid FROM organisations WHERE name = $1", str(raw).strip()[:255]
    )


async def find_server(conn: Conn, raw: Any) -> int | None:
    """A server entry's id by id, url or name (``Server::fetchServer``); 0 is this instance."""
    if raw is None or str(raw).strip() == "" or not storable(str(raw)):
        return None
    key = ident(raw)
    if key == _LOCAL:
        return _LOCAL
    if isinstance(key, int):
        found = await conn.fetchval("SELECT id FROM servers WHERE id = $1", key)
    else:
        text = str(raw).strip()[:2048]
        found = await conn.fetchval(
            "SELECT id FROM servers WHERE url = $1 OR rtrim(url, '/') = rtrim($1, '/') "
            "OR name = $1 ORDER BY id LIMIT 1",
            text,
        )
    return None if found is None else int(found)


_PAGE = """
SELECT g.id, count(*) OVER () AS total
FROM sharing_groups g JOIN organisations o ON o.id = g.org_id
WHERE ($1::boolean
       OR g.org_id = $2
       OR EXISTS (SELECT 1 FROM sharing_group_orgs m
                  WHERE m.sharing_group_id = g.id AND m.org_id = $2)
       OR EXISTS (SELECT 1 FROM sharing_group_servers v
                  WHERE v.sharing_group_id = g.id AND v.server_id = 0 AND v.all_orgs))
  AND g.active = $3
  AND ($4::text IS NULL
       OR lower(g.uuid::text) LIKE $4 OR lower(g.name) LIKE $4
       OR lower(g.description) LIKE $4 OR lower(g.releasability) LIKE $4
       OR lower(o.name) LIKE $4
       OR EXISTS (SELECT 1 FROM sharing_group_orgs so JOIN organisations mo ON mo.id = so.org_id
                  WHERE so.sharing_group_id = g.id
                    AND (lower(mo.name) LIKE $4 OR mo.uuid::text LIKE $4)))
  AND ((cardinality($5::bigint[]) = 0 AND cardinality($6::bigint[]) = 0)
       OR EXISTS (SELECT 1 FROM sharing_group_orgs so WHERE so.sharing_group_id = g.id
                  AND (cardinality($5::bigint[]) = 0 OR so.org_id = ANY($5::bigint[]))
                  AND NOT so.org_id = ANY($6::bigint[])))
ORDER BY g.name, g.id
LIMIT $7 OFFSET $8
"""


async def page(
    conn: Conn,
    viewer: Viewer,
    *,
    active: bool,
    value: str | None,
    org_ids: list[int],
    not_org_ids: list[int],
    limit: int,
    offset: int,
) -> tuple[list[int], int]:
    """The ids of the groups the viewer may see (``SharingGroup::checkIfAuthorised``: a site
    admin all; others those their organisation owns or is a member of, and those with this
    instance among their servers for all organisations), by name, and how many there are in
    all. MISP's REST ``sharingGroups/index`` filters: ``value`` a part of the group's uuid,
    name, description, releasability, its owner's name or a member's name or uuid;
    ``searchorg`` the member organisations (``org_ids``) and those not (``not_org_ids``)."""
    pattern = f"%{value.lower()}%" if value else None
    args = [viewer.site_admin, viewer.org_id, active, pattern, org_ids, not_org_ids]
    rows = await conn.fetch(_PAGE, *args, limit, offset)
    if rows:
        return [int(r["id"]) for r in rows], int(rows[0]["total"])
    if offset:  # past the last page: count all the same
        first = await conn.fetch(_PAGE, *args, 1, 0)
        return [], int(first[0]["total"]) if first else 0
    return [], 0


async def member(conn: Conn, group_id: int, org_id: int) -> Any:
    """The ``sharing_group_orgs`` row of ``org_id`` in the group (None: not a member)."""
    return await conn.fetchrow(
        "SELECT * FROM sharing_group_orgs WHERE sharing_group_id = $1 AND org_id = $2",
        group_id,
        org_id,
    )


async def insert(conn: Conn, values: dict[str, Any], *, org_id: int, now: Any) -> int:
    row = await conn.fetchrow(
        """
        INSERT INTO sharing_groups (uuid, name, releasability, description, org_id, active,
            roaming, local, created_at, updated_at)
        VALUES ($1, $2, $3, $4, $5, $6, $7, true, $8, $8)
        ON CONFLICT (uuid) DO NOTHING
        RETURNING id
        """,
        values["uuid"], values["name"], values["releasability"], values["description"],
        org_id, values["active"], values["roaming"], now,
    )  # fmt: skip
    return 0 if row is None else int(row["id"])


async def update(conn: Conn, group_id: int, values: dict[str, Any], *, now: Any) -> None:
    """Set what ``values`` holds of ``name``, ``releasability``, ``description`` and
    ``roaming`` (the rest stays), and ``updated_at`` (MISP's ``modified``)."""
    await conn.execute(
        "UPDATE sharing_groups SET name = coalesce($2, name), "
        "releasability = coalesce($3, releasability), description = coalesce($4, description), "
        "roaming = coalesce($5, roaming), updated_at = $6 WHERE id = $1",
        group_id, values.get("name"), values.get("releasability"), values.get("description"),
        values.get("roaming"), now,
    )  # fmt: skip


async def add_org(conn: Conn, group_id: int, org_id: int, *, extend: bool) -> None:
    """Add the organisation, or set its ``extend`` when it is a member already."""
    await conn.execute(
        "INSERT INTO sharing_group_orgs (sharing_group_id, org_id, extend) VALUES ($1, $2, $3) "
        "ON CONFLICT (sharing_group_id, org_id) DO UPDATE SET extend = excluded.extend",
        group_id, org_id, extend,
    )  # fmt: skip


async def remove_org(conn: Conn, group_id: int, org_id: int) -> bool:
    status = await conn.execute(
        "DELETE FROM sharing_group_orgs WHERE sharing_group_id = $1 AND org_id = $2",
        group_id, org_id,
    )  # fmt: skip
    return bool(status != "DELETE 0")


async def add_server(conn: Conn, group_id: int, server_id: int, *, all_orgs: bool) -> bool:
    """Add the server (False: it is in the group already)."""
    status = await conn.execute(
        "INSERT INTO sharing_group_servers (sharing_group_id, server_id, all_orgs) "
        "VALUES ($1, $2, $3) ON CONFLICT (sharing_group_id, server_id) DO NOTHING",
        group_id, server_id, all_orgs,
    )  # fmt: skip
    return bool(status != "INSERT 0 0")


async def set_server(conn: Conn, group_id: int, server_id: int, *, all_orgs: bool) -> None:
    await conn.execute(
        "INSERT INTO sharing_group_servers (sharing_group_id, server_id, all_orgs) "
        "VALUES ($1, $2, $3) ON CONFLICT (sharing_group_id, server_id) "
        "DO UPDATE SET all_orgs = excluded.all_orgs",
        group_id, server_id, all_orgs,
    )  # fmt: skip


async def remove_server(conn: Conn, group_id: int, server_id: int) -> bool:
    status = await conn.execute(
        "DELETE FROM sharing_group_servers WHERE sharing_group_id = $1 AND server_id = $2",
        group_id, server_id,
    )  # fmt: skip
    return bool(status != "DELETE 0")


async def in_use(conn: Conn, group_id: int) -> bool:
    """Whether an event, attribute, object, event report or feed names the group
    (``SharingGroup::beforeDelete``; feeds because their rows refer to it)."""
    return bool(
        await conn.fetchval(
            """
            SELECT EXISTS (SELECT 1 FROM events WHERE sharing_group_id = $1)
                OR EXISTS (SELECT 1 FROM attributes WHERE sharing_group_id = $1)
                OR EXISTS (SELECT 1 FROM objects WHERE sharing_group_id = $1)
                OR EXISTS (SELECT 1 FROM event_reports WHERE sharing_group_id = $1)
                OR EXISTS (SELECT 1 FROM feeds WHERE sharing_group_id = $1)
            """,
            group_id,
        )
    )


async def delete(conn: Conn, group_id: int) -> None:
    """The group, its organisations and its servers (their rows cascade)."""
    await conn.execute("DELETE FROM sharing_groups WHERE id = $1", group_id)
