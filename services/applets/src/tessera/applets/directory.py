"""SQL for who is who: auth's projection (users, organisations, memberships) and who holds
which role on which applet, invitations and ownership transfers. asyncpg; nothing commits.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

__all__ = [
    "admin_organisations",
    "delete_role",
    "grant_role",
    "invitation_by_hash",
    "is_member",
    "roles_of",
    "user",
    "user_by_email",
]

Conn = Any


# --- auth's projection ------------------------------------------------------------------------


async def upsert_user(
    conn: Conn, user_id: uuid.UUID, *, email: str, full_name: str, locale: str
) -> None:
    await conn.execute(
        """
        INSERT INTO users (id, email, full_name, locale) VALUES ($1, lower($2), $3, $4)
        ON CONFLICT (id) DO UPDATE SET email = excluded.email, full_name = excluded.full_name,
            locale = excluded.locale
        WHERE users.deleted_at IS NULL
        """,
        user_id,
        email,
        full_name,
        locale,
    )


async def forget_user(conn: Conn, user_id: uuid.UUID, now: datetime) -> None:
    """The user was deleted: keep the id (roles history), erase who they were."""
    await conn.execute(
        """
        INSERT INTO users (id, email, full_name, locale, deleted_at)
        VALUES ($1, NULL, NULL, 'en', $2)
        ON CONFLICT (id) DO UPDATE SET email = NULL, full_name = NULL, deleted_at = $2
        """,
        user_id,
        now,
    )


async def user(conn: Conn, user_id: uuid.UUID) -> Any:
    return await conn.fetchrow(
        "SELECT id, email, full_name, locale, deleted_at FROM users WHERE id = $1", user_id
    )


async def user_by_email(conn: Conn, email: str) -> Any:
    return await conn.fetchrow(
        "SELECT id, email, full_name, locale FROM users "
        "WHERE email = lower($1) AND deleted_at IS NULL",
        email,
    )


async def users(conn: Conn, ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, Any]:
    rows = await conn.fetch(
        "SELECT id, email, full_name, locale, deleted_at FROM users WHERE id = ANY($1::uuid[])",
        list(ids),
    )
    return {r["id"]: r for r in rows}


async def upsert_organisation(conn: Conn, organisation_id: uuid.UUID, name: str) -> None:
    await conn.execute(
        "INSERT INTO organisations (id, name) VALUES ($1, $2) "
        "ON CONFLICT (id) DO UPDATE SET name = excluded.name",
        organisation_id,
        name,
    )


async def set_membership(
    conn: Conn,
    organisation_id: uuid.UUID,
    user_id: uuid.UUID,
    *,
    role: str | None,
    at: datetime,
) -> None:
    """Record a granted membership (``role``) or a revoked one (None). Events about one
    membership may arrive out of order: the one that happened later wins."""
    await conn.execute(
        """
        INSERT INTO memberships (organisation_id, user_id, role, revoked_at, updated_at)
        VALUES ($1, $2, COALESCE($3, 'member'),
            CASE WHEN $3::text IS NULL THEN $4::timestamptz END, $4)
        ON CONFLICT (organisation_id, user_id) DO UPDATE SET
            role = COALESCE($3, memberships.role),
            revoked_at = CASE WHEN $3::text IS NULL THEN $4::timestamptz END,
            updated_at = $4
        WHERE memberships.updated_at <= $4
        """,
        organisation_id,
        user_id,
        role,
        at,
    )


async def membership(conn: Conn, organisation_id: uuid.UUID, user_id: uuid.UUID) -> Any:
    return await conn.fetchrow(
        "SELECT role, revoked_at FROM memberships WHERE organisation_id = $1 AND user_id = $2",
        organisation_id,
        user_id,
    )


def _claimed(claims: Mapping[str, str], organisation_id: uuid.UUID) -> str | None:
    return claims.get(str(organisation_id))


async def is_member(
    conn: Conn,
    organisation_id: uuid.UUID,
    user_id: uuid.UUID,
    claims: Mapping[str, str],
    *,
    admin: bool = False,
) -> bool:
    """Whether the user is a member (an admin, with ``admin``) of the organisation.

    This service's projection of auth's membership events decides when it has heard of the
    membership (a revocation there outweighs an older token). Before the first event
    arrives, the caller's access token (signed by auth, minutes old) speaks for it, so an
    organisation created a moment ago is usable at once."""
    row = await membership(conn, organisation_id, user_id)
    if row is not None:
        if row["revoked_at"] is not None:
            return False
        return row["role"] == "admin" if admin else True
    claimed = _claimed(claims, organisation_id)
    return claimed == "admin" if admin else claimed is not None


async def admin_organisations(
    conn: Conn, user_id: uuid.UUID, claims: Mapping[str, str]
) -> list[uuid.UUID]:
    """The organisations the user administers (projection first, then the token)."""
    rows = await conn.fetch(
        "SELECT organisation_id, role, revoked_at FROM memberships WHERE user_id = $1", user_id
    )
    known = {r["organisation_id"]: r for r in rows}
    admin = [org for org, r in known.items() if r["revoked_at"] is None and r["role"] == "admin"]
    for org, role in claims.items():
        try:
            org_id = uuid.UUID(org)
        except ValueError:
            continue
        if role == "admin" and org_id not in known:
            admin.append(org_id)
    return admin


async def organisation_admins(conn: Conn, organisation_id: uuid.UUID) -> list[uuid.UUID]:
    rows = await conn.fetch(
        """
        SELECT m.user_id FROM memberships m LEFT JOIN users u ON u.id = m.user_id
        WHERE m.organisation_id = $1 AND m.role = 'admin' AND m.revoked_at IS NULL
          AND u.deleted_at IS NULL
        ORDER BY m.updated_at
        """,
        organisation_id,
    )
    return [r["user_id"] for r in rows]


# --- roles ------------------------------------------------------------------------------------


async def roles_of(conn: Conn, applet_id: uuid.UUID, user_id: uuid.UUID) -> set[str]:
    rows = await conn.fetch(
        "SELECT role FROM roles WHERE applet_id = $1 AND user_id = $2", applet_id, user_id
    )
    return {r["role"] for r in rows}


async def role_grant(conn: Conn, applet_id: uuid.UUID, user_id: uuid.UUID, role: str) -> Any:
    return await conn.fetchrow(
        "SELECT applet_id, user_id, role, nickname, secret_id, respondents, granted_by, "
        "granted_at FROM roles WHERE applet_id = $1 AND user_id = $2 AND role = $3",
        applet_id,
        user_id,
        role,
    )


async def grant_role(
    conn: Conn,
    applet_id: uuid.UUID,
    user_id: uuid.UUID,
    role: str,
    *,
    granted_by: uuid.UUID | None,
    now: datetime,
    nickname: str | None = None,
    secret_id: str | None = None,
    respondents: Sequence[uuid.UUID] = (),
) -> None:
    await conn.execute(
        """
        INSERT INTO roles (applet_id, user_id, role, nickname, secret_id, respondents,
            granted_by, granted_at)
        VALUES ($1, $2, $3, $4, $5, $6::uuid[], $7, $8)
        ON CONFLICT (applet_id, user_id, role) DO UPDATE SET nickname = excluded.nickname,
            secret_id = excluded.secret_id, respondents = excluded.respondents
        """,
        applet_id,
        user_id,
        role,
        nickname,
        secret_id,
        list(respondents),
        granted_by,
        now,
    )


async def delete_role(conn: Conn, applet_id: uuid.UUID, user_id: uuid.UUID, role: str) -> bool:
    done = await conn.execute(
        "DELETE FROM roles WHERE applet_id = $1 AND user_id = $2 AND role = $3",
        applet_id,
        user_id,
        role,
    )
    return bool(done != "DELETE 0")


async def set_respondents(
    conn: Conn, applet_id: uuid.UUID, reviewer_id: uuid.UUID, respondents: Sequence[uuid.UUID]
) -> None:
    await conn.execute(
        "UPDATE roles SET respondents = $3::uuid[] "
        "WHERE applet_id = $1 AND user_id = $2 AND role = 'reviewer'",
        applet_id,
        reviewer_id,
        list(respondents),
    )


async def respondents_among(
    conn: Conn, applet_id: uuid.UUID, user_ids: Sequence[uuid.UUID]
) -> set[uuid.UUID]:
    rows = await conn.fetch(
        "SELECT user_id FROM roles WHERE applet_id = $1 AND role = 'respondent' "
        "AND user_id = ANY($2::uuid[])",
        applet_id,
        list(user_ids),
    )
    return {r["user_id"] for r in rows}


async def forget_respondent(conn: Conn, applet_id: uuid.UUID, respondent: uuid.UUID) -> list[Any]:
    """Take ``respondent`` out of every reviewer's list on the applet; the changed grants."""
    return list(
        await conn.fetch(
            """
            UPDATE roles SET respondents = array_remove(respondents, $2)
            WHERE applet_id = $1 AND role = 'reviewer' AND $2 = ANY(respondents)
            RETURNING user_id, respondents
            """,
            applet_id,
            respondent,
        )
    )


async def secret_id_taken(conn: Conn, applet_id: uuid.UUID, secret_id: str) -> bool:
    found = await conn.fetchval(
        """
        SELECT EXISTS (SELECT 1 FROM roles WHERE applet_id = $1 AND role = 'respondent'
                       AND secret_id = $2)
            OR EXISTS (SELECT 1 FROM invitations WHERE applet_id = $1 AND role = 'respondent'
                       AND status = 'pending' AND secret_id = $2)
        """,
        applet_id,
        secret_id,
    )
    return bool(found)


async def roles_page(
    conn: Conn,
    applet_id: uuid.UUID,
    *,
    role: str | None,
    limit: int,
    offset: int,
) -> tuple[list[Any], int]:
    rows = await conn.fetch(
        """
        SELECT r.user_id, r.role, r.nickname, r.secret_id, r.respondents, r.granted_at,
            u.email, u.full_name, count(*) OVER () AS total
        FROM roles r LEFT JOIN users u ON u.id = r.user_id
        WHERE r.applet_id = $1 AND ($2::text IS NULL OR r.role = $2)
        ORDER BY r.granted_at, r.user_id, r.role
        LIMIT $3 OFFSET $4
        """,
        applet_id,
        role,
        limit,
        offset,
    )
    if rows:
        return list(rows), rows[0]["total"]
    total = await conn.fetchval(
        "SELECT count(*) FROM roles WHERE applet_id = $1 AND ($2::text IS NULL OR role = $2)",
        applet_id,
        role,
    )
    return [], total


async def owners(conn: Conn, applet_id: uuid.UUID) -> list[uuid.UUID]:
    rows = await conn.fetch(
        "SELECT user_id FROM roles WHERE applet_id = $1 AND role = 'owner' ORDER BY granted_at",
        applet_id,
    )
    return [r["user_id"] for r in rows]


async def grants_of_user(conn: Conn, user_id: uuid.UUID) -> list[Any]:
    """Every role the user holds, on live applets or not, with the applet's organisation."""
    return list(
        await conn.fetch(
            """
            SELECT r.applet_id, r.role, a.organisation_id, a.display_name, a.deleted_at
            FROM roles r JOIN applets a ON a.id = r.applet_id
            WHERE r.user_id = $1 ORDER BY r.applet_id, r.role
            """,
            user_id,
        )
    )


async def applets_with_respondent(conn: Conn, user_id: uuid.UUID) -> list[uuid.UUID]:
    rows = await conn.fetch(
        "SELECT DISTINCT applet_id FROM roles WHERE role = 'reviewer' AND $1 = ANY(respondents)",
        user_id,
    )
    return [r["applet_id"] for r in rows]


# --- invitations and transfers ----------------------------------------------------------------

_INVITATION = (
    "id, applet_id, email, role, locale, nickname, secret_id, respondents, status, sent_count, "
    "invited_by, user_id, expires_at, created_at, updated_at"
)


async def insert_invitation(conn: Conn, row: dict[str, Any]) -> None:
    await conn.execute(
        """
        INSERT INTO invitations (id, applet_id, email, role, locale, nickname, secret_id,
            respondents, token_hash, status, sent_count, invited_by, expires_at, created_at,
            updated_at)
        VALUES ($1, $2, lower($3), $4, $5, $6, $7, $8::uuid[], $9, 'pending', 1, $10, $11, $12,
            $12)
        """,
        row["id"], row["applet_id"], row["email"], row["role"], row["locale"], row["nickname"],
        row["secret_id"], list(row["respondents"]), row["token_hash"], row["invited_by"],
        row["expires_at"], row["now"],
    )  # fmt: skip


async def invitation(conn: Conn, applet_id: uuid.UUID, invitation_id: uuid.UUID) -> Any:
    return await conn.fetchrow(
        f"SELECT {_INVITATION} FROM invitations WHERE applet_id = $1 AND id = $2 FOR UPDATE",  # noqa: S608
        applet_id,
        invitation_id,
    )


async def invitation_by_hash(conn: Conn, token_hash: str) -> Any:
    return await conn.fetchrow(
        f"SELECT {_INVITATION} FROM invitations WHERE token_hash = $1 FOR UPDATE",  # noqa: S608
        token_hash,
    )


async def pending_invitation(conn: Conn, applet_id: uuid.UUID, email: str, role: str) -> Any:
    return await conn.fetchrow(
        f"SELECT {_INVITATION} FROM invitations "  # noqa: S608
        "WHERE applet_id = $1 AND email = lower($2) AND role = $3 AND status = 'pending'",
        applet_id,
        email,
        role,
    )


async def update_invitation(conn: Conn, invitation_id: uuid.UUID, **values: Any) -> None:
    allowed = {"status", "token_hash", "sent_count", "user_id", "expires_at", "updated_at"}
    sets, args = [], [invitation_id]
    for name, value in values.items():
        if name not in allowed:
            raise KeyError(name)
        args.append(value)
        sets.append(f"{name} = ${len(args)}")
    await conn.execute(f"UPDATE invitations SET {', '.join(sets)} WHERE id = $1", *args)  # noqa: S608


async def invitations_page(
    conn: Conn,
    applet_id: uuid.UUID,
    *,
    status: str | None,
    now: datetime,
    limit: int,
    offset: int,
) -> tuple[list[Any], int]:
    """Invitations of the applet, newest first; ``expired`` is a pending one past its time."""
    query = f"""
        SELECT {_INVITATION}, count(*) OVER () AS total FROM invitations
        WHERE applet_id = $1 AND (
            $2::text IS NULL
            OR ($2 = 'expired' AND status = 'pending' AND expires_at <= $3)
            OR ($2 = 'pending' AND status = 'pending' AND expires_at > $3)
            OR ($2 NOT IN ('pending', 'expired') AND status = $2))
        ORDER BY created_at DESC, id LIMIT $4 OFFSET $5
    """  # noqa: S608
    rows = await conn.fetch(query, applet_id, status, now, limit, offset)
    if rows or not offset:
        return list(rows), rows[0]["total"] if rows else 0
    _every, total = await invitations_page(
        conn, applet_id, status=status, now=now, limit=1, offset=0
    )
    return [], total


async def insert_transfer(conn: Conn, row: dict[str, Any]) -> None:
    await conn.execute(
        """
        UPDATE transfers SET status = 'cancelled', updated_at = $3
        WHERE applet_id = $1 AND status = 'pending' AND id <> $2
        """,
        row["applet_id"],
        row["id"],
        row["now"],
    )
    await conn.execute(
        """
        INSERT INTO transfers (id, applet_id, email, token_hash, status, requested_by,
            expires_at, created_at, updated_at)
        VALUES ($1, $2, lower($3), $4, 'pending', $5, $6, $7, $7)
        """,
        row["id"], row["applet_id"], row["email"], row["token_hash"], row["requested_by"],
        row["expires_at"], row["now"],
    )  # fmt: skip


async def transfer_by_hash(conn: Conn, token_hash: str) -> Any:
    return await conn.fetchrow(
        "SELECT id, applet_id, email, status, requested_by, expires_at FROM transfers "
        "WHERE token_hash = $1 FOR UPDATE",
        token_hash,
    )


async def settle_transfer(
    conn: Conn, transfer_id: uuid.UUID, status: str, user_id: uuid.UUID, now: datetime
) -> None:
    await conn.execute(
        "UPDATE transfers SET status = $2, user_id = $3, updated_at = $4 WHERE id = $1",
        transfer_id,
        status,
        user_id,
        now,
    )
