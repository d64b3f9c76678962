"""SQL for protected events: the keys an event trusts (``cryptographic_keys``) and this
instance's signing keys (``instance_keys``). Inside the caller's transaction; never commits."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID, uuid4

__all__ = [
    "EventKey",
    "add_event_key",
    "add_instance_key",
    "capture_event_keys",
    "instance_keys",
    "signing_key",
    "trusted_keys",
]

Conn = Any


@dataclass(frozen=True)
class EventKey:
    """A key to store for an event: its fingerprint computed here from ``key_data``."""

    fingerprint: str
    key_data: str
    uuid: UUID | None = None
    type: str = "pgp"
    revoked: bool = False


async def trusted_keys(conn: Conn, event_uuid: UUID) -> tuple[bool, list[str]] | None:
    """The local copy of an event: whether it is protected, and the ``key_data`` of the keys
    it trusts (not revoked); None when there is no local copy."""
    row = await conn.fetchrow("SELECT id, protected FROM events WHERE uuid = $1", event_uuid)
    if row is None:
        return None
    keys = await conn.fetch(
        "SELECT key_data FROM cryptographic_keys WHERE event_id = $1 AND NOT revoked ORDER BY id",
        row["id"],
    )
    return bool(row["protected"]), [k["key_data"] for k in keys]


async def capture_event_keys(
    conn: Conn, event_id: int, keys: Sequence[EventKey], *, now: int
) -> None:
    """MISP's ``captureCryptographicKeyUpdate``: the event trusts exactly ``keys`` (by
    fingerprint: a known one kept, its revocation taken, a new one added, a missing one
    removed). An empty list changes nothing, as in MISP."""
    if not keys:
        return
    wanted = {k.fingerprint: k for k in keys}
    await conn.execute(
        "DELETE FROM cryptographic_keys WHERE event_id = $1 AND fingerprint <> ALL($2::text[])",
        event_id,
        list(wanted),
    )
    for key in wanted.values():
        await conn.execute(
            """
            INSERT INTO cryptographic_keys
                (uuid, event_id, type, key_data, fingerprint, revoked, timestamp)
            VALUES ($1, $2, $3, $4, $5, $6, $7)
            ON CONFLICT (event_id, fingerprint) DO UPDATE
            SET revoked = cryptographic_keys.revoked OR excluded.revoked
            """,
            await _free_uuid(conn, key.uuid), event_id, key.type, key.key_data,
            key.fingerprint, key.revoked, now,
        )  # fmt: skip


async def add_event_key(conn: Conn, event_id: int, key: EventKey, *, now: int) -> None:
    """The event trusts ``key`` too (nothing changes when it does already)."""
    await conn.execute(
        """
        INSERT INTO cryptographic_keys
            (uuid, event_id, type, key_data, fingerprint, revoked, timestamp)
        VALUES ($1, $2, $3, $4, $5, false, $6)
        ON CONFLICT (event_id, fingerprint) DO NOTHING
        """,
        uuid4(), event_id, key.type, key.key_data, key.fingerprint, now,
    )  # fmt: skip


async def _free_uuid(conn: Conn, wanted: UUID | None) -> UUID:
    """The key's uuid as sent, unless another event's copy of the key already has it (MISP
    gives each copy its own uuid)."""
    if wanted is not None and not await conn.fetchval(
        "SELECT 1 FROM cryptographic_keys WHERE uuid = $1", wanted
    ):
        return wanted
    return uuid4()


async def signing_key(conn: Conn) -> Any:
    """The key this instance signs with: its oldest key that is not retired (None: none
    yet)."""
    return await conn.fetchrow(
        "SELECT * FROM instance_keys WHERE retired_at IS NULL ORDER BY id LIMIT 1"
    )


async def instance_keys(conn: Conn) -> list[Any]:
    return list(await conn.fetch("SELECT * FROM instance_keys ORDER BY id"))


async def add_instance_key(
    conn: Conn, *, fingerprint: str, key_data: str, secret: bytes, now: datetime
) -> Any:
    return await conn.fetchrow(
        """
        INSERT INTO instance_keys (fingerprint, key_data, secret, created_at)
        VALUES ($1, $2, $3, $4) RETURNING *
        """,
        fingerprint, key_data, secret, now,
    )  # fmt: skip
