"""Auth's events, as the applets service keeps them: who users are, organisations and who
administers them, and what a deleted account leaves behind.

Handlers run inside the kernel's unit of work (the inbox claim and these rows commit
together); they never commit themselves.
"""

from __future__ import annotations

from datetime import UTC, datetime

import structlog

from tessera.applets import directory
from tessera.applets.domain import Role
from tessera.applets.events import (
    AccessGranted,
    AccessRevoked,
    MembershipGranted,
    MembershipRevoked,
    OrganisationCreated,
    OrganisationUpdated,
    OwnershipTransferred,
    UserDeleted,
    UserRegistered,
)
from tessera.common.consumers import Handling
from tessera.common.db import driver_in_transaction

__all__ = [
    "membership_granted",
    "membership_revoked",
    "organisation_changed",
    "user_deleted",
    "user_registered",
]

log = structlog.stdlib.get_logger(__name__)


async def user_registered(uow: Handling, event: UserRegistered) -> None:
    conn = await driver_in_transaction(uow.session)
    await directory.upsert_user(
        conn, event.user_id, email=event.email, full_name=event.full_name, locale=event.locale
    )


async def organisation_changed(
    uow: Handling, event: OrganisationCreated | OrganisationUpdated
) -> None:
    conn = await driver_in_transaction(uow.session)
    await directory.upsert_organisation(conn, event.organisation_id, event.name)


async def membership_granted(uow: Handling, event: MembershipGranted) -> None:
    conn = await driver_in_transaction(uow.session)
    await directory.set_membership(
        conn, event.organisation_id, event.user_id, role=event.role,
        at=uow.envelope.occurred_at,
    )  # fmt: skip


async def membership_revoked(uow: Handling, event: MembershipRevoked) -> None:
    conn = await driver_in_transaction(uow.session)
    await directory.set_membership(
        conn, event.organisation_id, event.user_id, role=None, at=uow.envelope.occurred_at
    )


async def user_deleted(uow: Handling, event: UserDeleted) -> None:
    """Remove every role of the deleted user. An applet they alone owned passes to its
    organisation's admins (each becomes an owner; the fact is logged and published); with
    no admin left it stays without owner, and that is logged as a warning."""
    conn = await driver_in_transaction(uow.session)
    user_id, now = event.user_id, datetime.now(UTC)
    grants = await directory.grants_of_user(conn, user_id)
    owned: dict = {}
    for grant in grants:
        applet_id = grant["applet_id"]
        await directory.delete_role(conn, applet_id, user_id, grant["role"])
        uow.publish(
            AccessRevoked(applet_id=applet_id, user_id=user_id, role=grant["role"],
                          reason="user_deleted"),
            subject=str(applet_id),
        )  # fmt: skip
        if grant["role"] == Role.owner and grant["deleted_at"] is None:
            owned[applet_id] = grant
    for applet_id in await directory.applets_with_respondent(conn, user_id):
        for changed in await directory.forget_respondent(conn, applet_id, user_id):
            uow.publish(
                AccessGranted(applet_id=applet_id, user_id=changed["user_id"],
                              role=Role.reviewer, respondents=list(changed["respondents"])),
                subject=str(applet_id),
            )  # fmt: skip
    await conn.execute(
        "UPDATE transfers SET status = 'cancelled', updated_at = $2 "
        "WHERE requested_by = $1 AND status = 'pending'",
        user_id,
        now,
    )
    for applet_id, grant in owned.items():
        if await directory.owners(conn, applet_id):
            continue
        await _pass_to_admins(uow, conn, applet_id, grant, user_id, now)
    await directory.forget_user(conn, user_id, now)


async def _pass_to_admins(
    uow: Handling, conn: object, applet_id: object, grant: dict, previous: object, now: datetime
) -> None:
    admins = [
        a for a in await directory.organisation_admins(conn, grant["organisation_id"])
        if a != previous
    ]  # fmt: skip
    if not admins:
        log.warning("applet_without_owner", applet_id=str(applet_id),
                    organisation_id=str(grant["organisation_id"]))  # fmt: skip
        return
    known = await directory.users(conn, admins)
    for admin in admins:
        await directory.grant_role(conn, applet_id, admin, Role.owner, granted_by=None, now=now)
        uow.publish(
            AccessGranted(applet_id=applet_id, user_id=admin, role=Role.owner),
            subject=str(applet_id),
        )
        who = known.get(admin)
        uow.publish(
            OwnershipTransferred(
                applet_id=applet_id,
                applet_name=grant["display_name"],
                reason="owner_deleted",
                previous_owner_id=previous,
                new_owner_id=admin,
                new_owner_email=None if who is None else who["email"],
                new_owner_name=None if who is None else who["full_name"],
                new_owner_locale="en" if who is None else who["locale"],
            ),
            subject=str(applet_id),
        )
    log.info("applet_owner_reassigned", applet_id=str(applet_id), previous_owner=str(previous),
             new_owners=[str(a) for a in admins])  # fmt: skip
