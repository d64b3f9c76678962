"""Protected events (MISP 2.4.156+): an event whose ``protected`` flag is set travels only
with an OpenPGP signature (``x-pgp-signature``) by one of the keys it lists
(``CryptographicKey``), and every hop checks it.

* This instance signs with its own key (:func:`signer`): ``SYNC__SIGNING_KEY`` when set,
  else one made once, its secret half sealed with ``SYNC__SERVER_KEY``; ``events/view`` of
  a protected event and a push of one carry the signature of the exact bytes sent
  (:func:`sign_body`).
* What comes in (a pull's ``events/view``, a sync user's ``events/add`` / ``events/edit``)
  is checked by :func:`check` against the keys the local copy trusts, or, for an event not
  here yet, the keys it lists itself (``CryptographicKey::validateProtectedEvent``).
* Rotation (:func:`rotate`): a new key is added to the instance's keys and to every
  protected event here that lists the current one; the current one goes on signing until it
  is retired (:func:`retire`), so that the receivers learn the new key from an update they
  can still verify.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from anyio import to_thread

from tessera.common.db import UnitOfWork, driver_in_transaction
from tessera.sync import signing
from tessera.sync.crypto import KeyBox
from tessera.sync.service.changes import epoch
from tessera.sync.store import keys as key_store
from tessera.sync.wire import CryptographicKeyIn, EventIn

__all__ = [
    "FAILED",
    "NO_SIGNATURE",
    "PULL_FAILED",
    "InstanceSigner",
    "Keyring",
    "add_own_key",
    "check",
    "event_keys",
    "keep_keys",
    "public_keys",
    "retire",
    "rotate",
    "sign_body",
    "signer",
    "trusted_for",
    "verify",
]

Conn = Any

NO_SIGNATURE = "Protected event failed signature validation as no key was provided."
FAILED = "Protected event failed signature validation."
PULL_FAILED = (
    "Event failed the validation checks. The remote instance claims that the event can be "
    "signed with a valid key which is sus."
)
_USER_ID = "Tessera sync instance key"
_LOCK = 0x7E55E4A  # pg_advisory_xact_lock: one replica makes the first key


@dataclass(frozen=True)
class InstanceSigner:
    fingerprint: str
    key_data: str
    secret: bytes


@dataclass(frozen=True)
class Keyring:
    """What this instance signs with: the key the settings give (``SYNC__SIGNING_KEY``), or
    those it made, sealed with ``box``."""

    box: KeyBox
    configured: signing.NewKey | None = None

    @classmethod
    def of(cls, box: KeyBox, armored: str | None) -> Keyring:
        return cls(box, signing.from_secret(armored) if armored else None)


async def signer(conn: Conn, ring: Keyring) -> InstanceSigner:
    """This instance's signing key: the configured one (listed among the instance's keys
    the first time), else the oldest made here that is not retired, made (and stored sealed)
    the first time it is needed; in the caller's transaction."""
    box = ring.box
    if ring.configured is not None:
        given = ring.configured
        if not await conn.fetchval(
            "SELECT 1 FROM instance_keys WHERE fingerprint = $1", given.fingerprint
        ):
            await conn.execute("SELECT pg_advisory_xact_lock($1)", _LOCK)
            await conn.execute(
                "INSERT INTO instance_keys (fingerprint, key_data, secret, created_at) "
                "VALUES ($1, $2, $3, $4) ON CONFLICT (fingerprint) DO NOTHING",
                given.fingerprint, given.key_data, box.seal(given.secret.hex()),
                datetime.now(UTC),
            )  # fmt: skip
        return InstanceSigner(given.fingerprint, given.key_data, given.secret)
    row = await key_store.signing_key(conn)
    if row is None:
        await conn.execute("SELECT pg_advisory_xact_lock($1)", _LOCK)
        row = await key_store.signing_key(conn)
    if row is None:
        made = await to_thread.run_sync(signing.new_key, _USER_ID)
        row = await key_store.add_instance_key(
            conn, fingerprint=made.fingerprint, key_data=made.key_data,
            secret=box.seal(made.secret.hex()), now=datetime.now(UTC),
        )  # fmt: skip
    return InstanceSigner(
        fingerprint=row["fingerprint"],
        key_data=row["key_data"],
        secret=bytes.fromhex(box.open(row["secret"])),
    )


async def sign_body(uow: UnitOfWork, ring: Keyring, body: bytes) -> str:
    """The ``x-pgp-signature`` of ``body`` by this instance's key (its own transaction: the
    first call stores the key)."""
    async with uow:
        conn = await driver_in_transaction(uow.session)
        key = await signer(conn, ring)
        await uow.commit()
    return await to_thread.run_sync(signing.sign, key.secret, body)


def event_keys(keys: Sequence[CryptographicKeyIn]) -> list[key_store.EventKey]:
    """The keys an event lists that are OpenPGP public keys (others trust nothing, as MISP's
    ``validateKey`` refuses them), fingerprints computed from ``key_data``."""
    found = []
    for key in keys:
        if key.type != "pgp":
            continue
        fingerprint = signing.fingerprint_of(key.key_data)
        if fingerprint is not None:
            found.append(
                key_store.EventKey(fingerprint, key.key_data, key.uuid, key.type, key.revoked)
            )
    return found


async def trusted_for(conn: Conn, event: EventIn, *, uuid: UUID | None = None) -> list[str] | None:
    """The keys (``key_data``) a signature over ``event`` must verify with: those the local
    copy trusts when it is protected, else, when ``event`` says it is protected, those it
    lists (a new event, or one that turns protected here); None: nothing to check."""
    wanted = uuid or event.uuid
    local = await key_store.trusted_keys(conn, wanted) if wanted is not None else None
    if local is not None and local[0]:
        return local[1]
    if event.protected:
        return [k.key_data for k in event_keys(event.cryptographic_keys) if not k.revoked]
    return None


async def verify(body: bytes, signature: str | None, trusted: list[str]) -> None:
    """:func:`signing.verify` off the event loop; :class:`signing.BadSignature` with MISP's
    words when there is no signature."""
    if not signature:
        raise signing.BadSignature(NO_SIGNATURE)
    await to_thread.run_sync(signing.verify, body, signature, trusted)


async def check(
    conn: Conn, *, body: bytes, signature: str | None, event: EventIn, uuid: UUID | None = None
) -> None:
    """Raise :class:`signing.BadSignature` unless ``body`` (which carries ``event``) is
    signed as a protected event must be (:func:`trusted_for`)."""
    trusted = await trusted_for(conn, event, uuid=uuid)
    if trusted is not None:
        await verify(body, signature, trusted)


async def keep_keys(
    conn: Conn, event_id: int, event: EventIn, *, add_own: Keyring | None = None
) -> None:
    """Store the keys ``event`` lists for ``event_id`` (MISP's key update), and, with
    ``add_own``, this instance's signing key among them (an event protected here)."""
    keys = event_keys(event.cryptographic_keys)
    if add_own is not None:
        own = await signer(conn, add_own)
        if all(k.fingerprint != own.fingerprint for k in keys):
            keys.append(key_store.EventKey(own.fingerprint, own.key_data))
    await key_store.capture_event_keys(conn, event_id, keys, now=epoch())


async def add_own_key(conn: Conn, event_id: int, ring: Keyring) -> None:
    """The event trusts this instance's signing key (an event protected here)."""
    own = await signer(conn, ring)
    await key_store.add_event_key(
        conn, event_id, key_store.EventKey(own.fingerprint, own.key_data), now=epoch()
    )


async def public_keys(uow: UnitOfWork, ring: Keyring) -> list[dict[str, Any]]:
    """This instance's keys (the signing one made when there is none yet), oldest first."""
    async with uow:
        conn = await driver_in_transaction(uow.session)
        current = await signer(conn, ring)
        rows = await key_store.instance_keys(conn)
        await uow.commit()
    return [
        {
            "type": "pgp",
            "fingerprint": r["fingerprint"],
            "key_data": r["key_data"],
            "created": r["created_at"].isoformat(),
            "retired": r["retired_at"].isoformat() if r["retired_at"] else None,
            "signing": r["fingerprint"] == current.fingerprint,
        }
        for r in rows
    ]


async def rotate(uow: UnitOfWork, ring: Keyring) -> str:
    """A new instance key, added to every protected event here that lists one of this
    instance's keys; the current key still signs until :func:`retire`. Its fingerprint.
    (With ``SYNC__SIGNING_KEY`` set, that key signs whatever is made here.)"""
    box = ring.box
    made = await to_thread.run_sync(signing.new_key, _USER_ID)
    async with uow:
        conn = await driver_in_transaction(uow.session)
        await signer(conn, ring)
        await key_store.add_instance_key(
            conn, fingerprint=made.fingerprint, key_data=made.key_data,
            secret=box.seal(made.secret.hex()), now=datetime.now(UTC),
        )  # fmt: skip
        await conn.execute(
            """
            INSERT INTO cryptographic_keys
                (uuid, event_id, type, key_data, fingerprint, revoked, timestamp)
            SELECT gen_random_uuid(), e.id, 'pgp', $1::text, $2::varchar, false, $3::bigint
            FROM events e
            WHERE e.protected AND EXISTS (
                SELECT 1 FROM cryptographic_keys c JOIN instance_keys i
                    ON i.fingerprint = c.fingerprint
                WHERE c.event_id = e.id AND i.fingerprint <> $2::varchar)
            ON CONFLICT (event_id, fingerprint) DO NOTHING
            """,
            made.key_data, made.fingerprint, epoch(),
        )  # fmt: skip
        await uow.commit()
    return made.fingerprint


async def retire(uow: UnitOfWork, fingerprint: str) -> bool:
    """This instance stops signing with the key (the next one signs); the events keep
    trusting it. False when no such key is in use."""
    async with uow:
        conn = await driver_in_transaction(uow.session)
        done = await conn.fetchval(
            "UPDATE instance_keys SET retired_at = $2 WHERE fingerprint = $1 "
            "AND retired_at IS NULL RETURNING id",
            fingerprint.upper(), datetime.now(UTC),
        )  # fmt: skip
        await uow.commit()
    return done is not None
