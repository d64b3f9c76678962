"""auth's events, as the sync service keeps them: who users are, their organisations and
their API keys, so that MISP clients are authenticated without asking auth. Handlers run in
the kernel's unit of work and never commit."""

from __future__ import annotations

from datetime import UTC, datetime

from tessera.common.consumers import Handling
from tessera.common.db import driver_in_transaction
from tessera.sync import directory
from tessera.sync.events import (
    ApiKeyCreated,
    ApiKeyRevoked,
    MembershipGranted,
    MembershipRevoked,
    OrganisationCreated,
    OrganisationUpdated,
    UserDeleted,
    UserRegistered,
)

__all__ = [
    "api_key_created",
    "api_key_revoked",
    "membership_granted",
    "membership_revoked",
    "organisation_changed",
    "user_deleted",
    "user_registered",
]


def _now() -> datetime:
    return datetime.now(UTC)


async def user_registered(uow: Handling, event: UserRegistered) -> None:
    conn = await driver_in_transaction(uow.session)
    await directory.upsert_user(
        conn, event.user_id, email=event.email, full_name=event.full_name, now=_now()
    )


async def user_deleted(uow: Handling, event: UserDeleted) -> None:
    conn = await driver_in_transaction(uow.session)
    await directory.forget_user(conn, event.user_id, _now())


async def organisation_changed(
    uow: Handling, event: OrganisationCreated | OrganisationUpdated
) -> None:
    conn = await driver_in_transaction(uow.session)
    await directory.upsert_organisation(
        conn, event.organisation_id, event.name, local=True, now=_now()
    )


async def membership_granted(uow: Handling, event: MembershipGranted) -> None:
    conn = await driver_in_transaction(uow.session)
    await directory.set_membership(
        conn, event.organisation_id, event.user_id, role=event.role, at=uow.envelope.occurred_at
    )


async def membership_revoked(uow: Handling, event: MembershipRevoked) -> None:
    conn = await driver_in_transaction(uow.session)
    await directory.set_membership(
        conn, event.organisation_id, event.user_id, role=None, at=uow.envelope.occurred_at
    )


async def api_key_created(uow: Handling, event: ApiKeyCreated) -> None:
    conn = await driver_in_transaction(uow.session)
    expires = None if event.expires_at is None else datetime.fromisoformat(event.expires_at)
    if expires is not None and expires.tzinfo is None:
        expires = expires.replace(tzinfo=UTC)
    await directory.upsert_key(
        conn, event.api_key_id, user_uuid=event.user_id, key_hash=event.key_hash,
        prefix=event.prefix[:16], expires_at=expires, allowed_cidrs=event.allowed_cidrs,
    )  # fmt: skip


async def api_key_revoked(uow: Handling, event: ApiKeyRevoked) -> None:
    conn = await driver_in_transaction(uow.session)
    await directory.revoke_key(
        conn, event.api_key_id, key_hash=event.key_hash, user_uuid=event.user_id, now=_now()
    )
