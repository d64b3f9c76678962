"""Auth's events as the applets service keeps them: users, organisations, memberships, and
what a deleted account leaves behind."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from tessera.common.testing.broker import publish_envelope

from .conftest import World, auth_envelope


async def test_a_deleted_owners_applet_passes_to_the_organisations_admin(world: World) -> None:
    admin = await world.person("Admin", locale="fi")
    org = await world.organisation(admin)
    owner = await world.person("Owner")
    await world.member(org, owner, "member")
    applet = await world.applet(owner, org)
    reviewer = await world.person("Rev")
    respondent = await world.person("Resp")
    await world.grant(applet["id"], owner, respondent, "respondent")
    await world.grant(applet["id"], owner, reviewer, "reviewer", respondents=[str(respondent.id)])

    await world.publish("auth.user.deleted", {"user_id": str(owner.id)}, str(owner.id))

    transferred = await world.bus.one("applets.ownership.transferred", applet_id=applet["id"])
    assert transferred["reason"] == "owner_deleted"
    assert transferred["new_owner_id"] == str(admin.id)
    assert transferred["new_owner_email"] == admin.email
    assert transferred["new_owner_locale"] == "fi"
    assert transferred["previous_owner_email"] is None
    revoked = await world.bus.one("applets.access.revoked", user_id=owner.id)
    assert (revoked["role"], revoked["reason"]) == ("owner", "user_deleted")
    owners = await world.query(
        "SELECT user_id FROM roles WHERE applet_id = $1 AND role = 'owner'",
        uuid.UUID(applet["id"]),
    )
    assert [o["user_id"] for o in owners] == [admin.id]
    [erased] = await world.query("SELECT email, full_name FROM users WHERE id = $1", owner.id)
    assert (erased["email"], erased["full_name"]) == (None, None)


async def test_a_deleted_respondent_leaves_every_reviewers_list(world: World) -> None:
    owner = await world.person("Owner")
    org = await world.organisation(owner)
    applet = await world.applet(owner, org)
    respondent = await world.person("Resp")
    reviewer = await world.person("Rev")
    await world.grant(applet["id"], owner, respondent, "respondent")
    await world.grant(applet["id"], owner, reviewer, "reviewer", respondents=[str(respondent.id)])

    await world.publish("auth.user.deleted", {"user_id": str(respondent.id)}, str(respondent.id))

    updated = await world.bus.events(
        "applets.access.granted",
        where=lambda d: d["user_id"] == str(reviewer.id) and d["respondents"] == [],
    )
    assert updated
    roles = await world.query("SELECT role FROM roles WHERE user_id = $1", respondent.id)
    assert roles == []


async def test_an_applet_whose_owner_and_organisation_have_nobody_left_keeps_no_owner(
    world: World,
) -> None:
    owner = await world.person("Solo")
    org = await world.organisation(owner)  # the owner is also the only admin
    applet = await world.applet(owner, org)

    await world.publish("auth.user.deleted", {"user_id": str(owner.id)}, str(owner.id))

    await world.eventually_sql("SELECT 1 FROM users WHERE id = $1 AND deleted_at IS NOT NULL",
                               owner.id)  # fmt: skip
    owners = await world.query(
        "SELECT 1 FROM roles WHERE applet_id = $1 AND role = 'owner'", uuid.UUID(applet["id"])
    )
    assert owners == []
    await world.bus.none("applets.ownership.transferred", applet_id=applet["id"])


async def test_membership_events_out_of_order_end_as_the_latest_says(world: World) -> None:
    ada = await world.person("Ada")
    org = uuid.uuid4()
    now = datetime.now(UTC)
    revoked = auth_envelope(
        "auth.membership.revoked", {"organisation_id": str(org), "user_id": str(ada.id)}, str(org)
    ) | {"occurred_at": now.isoformat()}
    granted = auth_envelope(
        "auth.membership.granted",
        {"organisation_id": str(org), "user_id": str(ada.id), "role": "admin"},
        str(org),
    ) | {"occurred_at": (now - timedelta(seconds=5)).isoformat()}

    for envelope in (revoked, granted):  # the later revocation arrives first
        await publish_envelope(world.infra.rabbitmq, world.infra.exchange, envelope)
        await world.eventually_sql(
            "SELECT 1 FROM inbox WHERE event_id = $1", uuid.UUID(envelope["id"])
        )

    [row] = await world.query(
        "SELECT role, revoked_at FROM memberships WHERE organisation_id = $1 AND user_id = $2",
        org,
        ada.id,
    )
    assert row["revoked_at"] is not None


async def test_an_organisation_rename_reaches_the_projection(world: World) -> None:
    ada = await world.person("Ada")
    org = await world.organisation(ada, name="Before")

    await world.publish(
        "auth.organisation.updated", {"organisation_id": str(org), "name": "After"}, str(org)
    )

    await world.eventually_sql("SELECT 1 FROM organisations WHERE id = $1 AND name = 'After'", org)
