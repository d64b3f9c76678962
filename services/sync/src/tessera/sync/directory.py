"""SQL for who is who: this service's projection of auth's users, organisations,
memberships and API keys, and the organisations synced events name. asyncpg; no commits."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any
from uuid import UUID

__all__ = [
    "caller_org",
    "ensure_organisation",
    "forget_user",
    "key_record",
    "revoke_key",
    "set_membership",
    "upsert_key",
    "upsert_organisation",
    "upsert_user",
    "user_by_uuid",
]

Conn = Any


async def upsert_user(
    conn: Conn, user_uuid: UUID, *, email: str, full_name: str, now: datetime
) -> None:
    await conn.execute(
        """
        INSERT INTO users (uuid, email, full_name, created_at) VALUES ($1, lower($2), $3, $4)
        ON CONFLICT (uuid) DO UPDATE SET email = excluded.email, full_name = excluded.full_name
        WHERE users.deleted_at IS NULL
        """,
        user_uuid,
        email,
        full_name,
        now,
    )


async def forget_user(conn: Conn, user_uuid: UUID, now: datetime) -> None:
    """The account was deleted: keep the row (events name their creator), erase the person,
    and no key of theirs works any more."""
    await conn.execute(
        """
        INSERT INTO users (uuid, email, full_name, created_at, deleted_at)
        VALUES ($1, NULL, NULL, $2, $2)
        ON CONFLICT (uuid) DO UPDATE SET email = NULL, full_name = NULL, deleted_at = $2
        """,
        user_uuid,
        now,
    )
    await conn.execute(
        "UPDATE api_keys SET revoked_at = $2 WHERE user_uuid = $1 AND revoked_at IS NULL",
        user_uuid,
        now,
    )


async def user_by_uuid(conn: Conn, user_uuid: UUID) -> Any:
    return await conn.fetchrow(
        "SELECT id, uuid, email, full_name, deleted_at FROM users WHERE uuid = $1", user_uuid
    )


async def upsert_organisation(
    conn: Conn, org_uuid: UUID, name: str, *, local: bool, now: datetime
) -> int:
    """The organisation's local id; a name another organisation already has gets the uuid's
    first characters appended (MISP's names are unique)."""
    row = await conn.fetchrow(
        """
        INSERT INTO organisations (uuid, name, local, created_at, updated_at)
        VALUES ($1, CASE WHEN EXISTS (SELECT 1 FROM organisations WHERE name = $2 AND uuid <> $1)
                         THEN $2 || ' (' || left($1::text, 8) || ')' ELSE $2 END, $3, $4, $4)
        ON CONFLICT (uuid) DO UPDATE SET
            name = CASE WHEN EXISTS (SELECT 1 FROM organisations
                                     WHERE name = excluded.name AND uuid <> $1)
                        THEN organisations.name ELSE excluded.name END,
            local = organisations.local OR excluded.local,
            updated_at = $4
        RETURNING id
        """,
        org_uuid,
        name,
        local,
        now,
    )
    return int(row["id"])


async def ensure_organisation(conn: Conn, org_uuid: UUID, name: str, now: datetime) -> int:
    """An organisation a synced event names (``Orgc``, ``Org``): created if unknown, its
    name left as it is if known."""
    found = await conn.fetchval("SELECT id FROM organisations WHERE uuid = $1", org_uuid)
    if found is not None:
        return int(found)
    return await upsert_organisation(conn, org_uuid, name, local=False, now=now)


async def set_membership(
    conn: Conn, organisation_uuid: UUID, user_uuid: UUID, *, role: str | None, at: datetime
) -> None:
    """A granted membership (``role``) or a revoked one (None); the later event wins."""
    await conn.execute(
        """
        INSERT INTO memberships (user_uuid, organisation_uuid, role, revoked_at, updated_at)
        VALUES ($1, $2, COALESCE($3, 'member'),
                CASE WHEN $3::text IS NULL THEN $4::timestamptz END, $4)
        ON CONFLICT (user_uuid, organisation_uuid) DO UPDATE SET
            role = COALESCE($3, memberships.role),
            revoked_at = CASE WHEN $3::text IS NULL THEN $4::timestamptz END,
            updated_at = $4
        WHERE memberships.updated_at <= $4
        """,
        user_uuid,
        organisation_uuid,
        role,
        at,
    )


async def caller_org(conn: Conn, user_uuid: UUID) -> Any:
    """The organisation a user acts for in MISP's terms: the oldest one they are still a
    member of (``id``, ``uuid``, ``name``, and their ``role`` there); None without one."""
    return await conn.fetchrow(
        """
        SELECT o.id, o.uuid, o.name, m.role FROM memberships m
        JOIN organisations o ON o.uuid = m.organisation_uuid
        WHERE m.user_uuid = $1 AND m.revoked_at IS NULL
        ORDER BY m.updated_at, o.id LIMIT 1
        """,
        user_uuid,
    )


async def upsert_key(
    conn: Conn,
    key_id: UUID,
    *,
    user_uuid: UUID,
    key_hash: str,
    prefix: str,
    expires_at: datetime | None,
    allowed_cidrs: list[str],
) -> None:
    await conn.execute(
        """
        INSERT INTO api_keys (id, user_uuid, key_hash, prefix, expires_at, allowed_cidrs)
        VALUES ($1, $2, $3, $4, $5, $6::jsonb)
        ON CONFLICT (id) DO NOTHING
        """,
        key_id,
        user_uuid,
        key_hash,
        prefix,
        expires_at,
        json.dumps(allowed_cidrs),
    )


async def revoke_key(
    conn: Conn, key_id: UUID, *, key_hash: str, user_uuid: UUID, now: datetime
) -> None:
    """Revoked, even when the creation has not arrived yet (events may come out of order)."""
    await conn.execute(
        """
        INSERT INTO api_keys (id, user_uuid, key_hash, prefix, revoked_at)
        VALUES ($1, $2, $3, '', $4)
        ON CONFLICT (id) DO UPDATE SET revoked_at = COALESCE(api_keys.revoked_at, $4)
        """,
        key_id,
        user_uuid,
        key_hash,
        now,
    )


async def key_record(conn: Conn, key_hash: str) -> Any:
    row = await conn.fetchrow(
        "SELECT id, user_uuid, expires_at, allowed_cidrs::text AS cidrs, revoked_at "
        "FROM api_keys WHERE key_hash = $1",
        key_hash,
    )
    return row
