"""Invitations and ownership transfers: by email, accepted by token with the invited address,
and every event that tells the mailer, answers and chat what happened."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from .conftest import World


async def _applet(world: World) -> tuple[dict, object]:
    owner = await world.person("Owner")
    org = await world.organisation(owner)
    return await world.applet(owner, org), owner


async def test_an_invitation_tells_the_mailer_everything_and_the_answer_no_token(
    world: World,
) -> None:
    applet, owner = await _applet(world)
    invitee = await world.person("Fleur", locale="fr")

    response = await world.client.post(
        f"/applets/{applet['id']}/invitations",
        json={"email": invitee.email.upper(), "role": "respondent", "nickname": "F",
              "secret_id": "S-001"},
        headers=world.headers(owner),
    )  # fmt: skip

    assert response.status_code == 201, response.text
    body = response.json()
    assert body["status"] == "pending"
    assert body["email"] == invitee.email
    assert "token" not in response.text
    event = await world.bus.one("applets.invitation.created", invitation_id=body["id"])
    assert event["locale"] == "fr"  # the invitee's own
    assert event["invitee_has_account"] is True
    assert event["invitee_name"] == "Fleur"
    assert event["inviter_name"] == "Owner"
    assert event["applet_name"] == "Daily wellbeing"
    assert len(event["accept_token"]) >= 20
    stored = await world.query(
        "SELECT token_hash FROM invitations WHERE id = $1", uuid.UUID(body["id"])
    )
    assert stored[0]["token_hash"] != event["accept_token"]  # only its hash is kept


async def test_someone_without_an_account_is_invited_to_register_and_accepts_afterwards(
    world: World,
) -> None:
    applet, owner = await _applet(world)
    email = f"later-{uuid.uuid4().hex[:8]}@example.org"
    invitation, token = await world.invite(applet["id"], owner, email, "editor")
    event = await world.bus.one("applets.invitation.created", invitation_id=invitation["id"])
    assert event["invitee_has_account"] is False
    assert event["locale"] == "en"  # the inviter's

    newcomer = await world.person("Newcomer")
    await world.query("UPDATE users SET email = $2 WHERE id = $1", newcomer.id, email)
    newcomer.email = email
    accepted = await world.client.post(
        "/applets/invitations/accept", json={"token": token}, headers=world.headers(newcomer)
    )

    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["status"] == "accepted"
    granted = await world.bus.one("applets.access.granted", user_id=newcomer.id)
    assert granted["role"] == "editor"
    told = await world.bus.one("applets.invitation.accepted", invitation_id=invitation["id"])
    assert told["inviter_email"] == owner.email
    assert told["invitee_email"] == email


async def test_a_link_works_only_for_the_invited_address_and_only_once(world: World) -> None:
    applet, owner = await _applet(world)
    invitee = await world.person("Ivan")
    intruder = await world.person("Mallory")
    _, token = await world.invite(applet["id"], owner, invitee.email, "respondent")

    wrong = await world.client.post(
        "/applets/invitations/accept", json={"token": token}, headers=world.headers(intruder)
    )
    unknown = await world.client.post(
        "/applets/invitations/accept", json={"token": "x" * 43}, headers=world.headers(invitee)
    )
    first = await world.client.post(
        "/applets/invitations/accept", json={"token": token}, headers=world.headers(invitee)
    )
    again = await world.client.post(
        "/applets/invitations/accept", json={"token": token}, headers=world.headers(invitee)
    )

    assert (wrong.status_code, wrong.json()["code"]) == (403, "invitation_for_another_address")
    assert unknown.status_code == 404
    assert first.status_code == 200
    assert (again.status_code, again.json()["code"]) == (409, "invitation_not_pending")


async def test_an_expired_invitation_is_gone_until_it_is_resent_with_a_new_link(
    world: World,
) -> None:
    applet, owner = await _applet(world)
    invitee = await world.person("Late")
    invitation, old_token = await world.invite(applet["id"], owner, invitee.email, "respondent")
    await world.query(
        "UPDATE invitations SET expires_at = $2 WHERE id = $1",
        uuid.UUID(invitation["id"]),
        datetime.now(UTC) - timedelta(minutes=1),
    )
    expired = await world.client.post(
        "/applets/invitations/accept", json={"token": old_token}, headers=world.headers(invitee)
    )
    listed = await world.client.get(
        f"/applets/{applet['id']}/invitations", params={"status": "expired"},
        headers=world.headers(owner),
    )  # fmt: skip

    resent = await world.client.post(
        f"/applets/{applet['id']}/invitations/{invitation['id']}/resend",
        headers=world.headers(owner),
    )
    reissued = await world.bus.one("applets.invitation.reissued", invitation_id=invitation["id"])
    stale = await world.client.post(
        "/applets/invitations/accept", json={"token": old_token}, headers=world.headers(invitee)
    )
    fresh = await world.client.post(
        "/applets/invitations/accept",
        json={"token": reissued["accept_token"]},
        headers=world.headers(invitee),
    )

    assert (expired.status_code, expired.json()["code"]) == (410, "invitation_expired")
    assert [i["id"] for i in listed.json()["items"]] == [invitation["id"]]
    assert resent.status_code == 200
    assert resent.json()["sent_count"] == 2
    assert resent.json()["status"] == "pending"
    assert stale.status_code == 404
    assert fresh.status_code == 200


async def test_a_revoked_or_declined_invitation_no_longer_works(world: World) -> None:
    applet, owner = await _applet(world)
    invitee = await world.person("Dana")
    revoked, revoked_token = await world.invite(applet["id"], owner, invitee.email, "editor")
    gone = await world.client.delete(
        f"/applets/{applet['id']}/invitations/{revoked['id']}", headers=world.headers(owner)
    )
    after_revoke = await world.client.post(
        "/applets/invitations/accept", json={"token": revoked_token},
        headers=world.headers(invitee),
    )  # fmt: skip
    _, token = await world.invite(applet["id"], owner, invitee.email, "editor")
    declined = await world.client.post(
        "/applets/invitations/decline", json={"token": token}, headers=world.headers(invitee)
    )
    after_decline = await world.client.post(
        "/applets/invitations/accept", json={"token": token}, headers=world.headers(invitee)
    )

    assert gone.status_code == 204
    assert after_revoke.status_code == 409
    assert declined.json()["status"] == "declined"
    assert after_decline.status_code == 409
    await world.bus.one("applets.invitation.revoked", invitation_id=revoked["id"])
    await world.bus.one("applets.invitation.declined", user_id=invitee.id)


async def test_invitation_fields_fit_the_role(world: World) -> None:
    applet, owner = await _applet(world)
    path = f"/applets/{applet['id']}/invitations"
    stranger = uuid.uuid4()

    nickname = await world.client.post(
        path, json={"email": "a@example.org", "role": "editor", "nickname": "x"},
        headers=world.headers(owner),
    )  # fmt: skip
    respondents = await world.client.post(
        path, json={"email": "b@example.org", "role": "reviewer",
                    "respondents": [str(stranger)]},
        headers=world.headers(owner),
    )  # fmt: skip
    owner_role = await world.client.post(
        path, json={"email": "c@example.org", "role": "owner"}, headers=world.headers(owner)
    )

    assert nickname.status_code == 422
    assert nickname.json()["errors"][0]["field"] == "nickname"
    assert respondents.status_code == 422
    assert respondents.json()["errors"][0]["field"] == "respondents"
    assert owner_role.status_code == 422


async def test_a_secret_id_is_unique_among_an_applets_respondents(world: World) -> None:
    applet, owner = await _applet(world)
    first = await world.person("One")
    await world.grant(applet["id"], owner, first, "respondent", secret_id="P-7")

    second = await world.client.post(
        f"/applets/{applet['id']}/invitations",
        json={"email": "two@example.org", "role": "respondent", "secret_id": "P-7"},
        headers=world.headers(owner),
    )
    twice = await world.client.post(
        f"/applets/{applet['id']}/invitations",
        json={"email": first.email, "role": "respondent"},
        headers=world.headers(owner),
    )

    assert (second.status_code, second.json()["code"]) == (409, "secret_id_taken")
    assert (twice.status_code, twice.json()["code"]) == (409, "role_already_held")


async def test_a_reviewer_reviews_only_respondents_of_the_applet(world: World) -> None:
    applet, owner = await _applet(world)
    resp_a, resp_b = await world.person("RA"), await world.person("RB")
    for who in (resp_a, resp_b):
        await world.grant(applet["id"], owner, who, "respondent")
    reviewer = await world.person("Rev")
    await world.grant(applet["id"], owner, reviewer, "reviewer", respondents=[str(resp_a.id)])
    granted = await world.bus.one("applets.access.granted", user_id=reviewer.id, role="reviewer")
    assert granted["respondents"] == [str(resp_a.id)]

    changed = await world.client.put(
        f"/applets/{applet['id']}/reviewers/{reviewer.id}/respondents",
        json={"respondents": [str(resp_a.id), str(resp_b.id)]},
        headers=world.headers(owner),
    )
    removed = await world.client.delete(
        f"/applets/{applet['id']}/roles/{resp_a.id}/respondent", headers=world.headers(owner)
    )

    assert changed.status_code == 200
    assert removed.status_code == 204
    revoked = await world.bus.one("applets.access.revoked", user_id=resp_a.id)
    assert revoked["reason"] == "removed"
    updates = await world.bus.events(
        "applets.access.granted",
        where=lambda d: d["user_id"] == str(reviewer.id),
        count=3,
    )
    assert updates[-1]["respondents"] == [str(resp_b.id)]  # resp_a left the applet
    roles = await world.client.get(
        f"/applets/{applet['id']}/roles", params={"role": "reviewer"},
        headers=world.headers(owner),
    )  # fmt: skip
    assert roles.json()["items"][0]["respondents"] == [str(resp_b.id)]


async def test_ownership_changes_hands_only_when_the_new_owner_accepts(world: World) -> None:
    applet, owner = await _applet(world)
    heir = await world.person("Heir", locale="es")
    stranger = await world.person("Stranger")

    offered = await world.client.post(
        f"/applets/{applet['id']}/transfer", json={"email": heir.email},
        headers=world.headers(owner),
    )  # fmt: skip
    request = await world.bus.one("applets.ownership.transfer_requested", applet_id=applet["id"])
    wrong = await world.client.post(
        "/applets/transfers/accept", json={"token": request["accept_token"]},
        headers=world.headers(stranger),
    )  # fmt: skip
    roles_before = await world.client.get(
        f"/applets/{applet['id']}/roles", params={"role": "owner"}, headers=world.headers(owner)
    )
    accepted = await world.client.post(
        "/applets/transfers/accept", json={"token": request["accept_token"]},
        headers=world.headers(heir),
    )  # fmt: skip

    assert offered.status_code == 201
    assert request["locale"] == "es"
    assert request["owner_name"] == "Owner"
    assert wrong.status_code == 403
    assert [r["user_id"] for r in roles_before.json()["items"]] == [str(owner.id)]
    assert accepted.status_code == 200, accepted.text
    transferred = await world.bus.one("applets.ownership.transferred", applet_id=applet["id"])
    assert transferred["reason"] == "transfer_accepted"
    assert transferred["previous_owner_email"] == owner.email
    assert transferred["new_owner_email"] == heir.email
    assert transferred["new_owner_locale"] == "es"
    mine = await world.client.get(f"/applets/{applet['id']}", headers=world.headers(heir))
    theirs = await world.client.get(f"/applets/{applet['id']}", headers=world.headers(owner))
    assert "owner" in mine.json()["my_roles"]
    assert "owner" not in theirs.json()["my_roles"]
    assert "manager" in theirs.json()["my_roles"]  # the previous owner stays on
    again = await world.client.post(
        f"/applets/{applet['id']}/transfer", json={"email": stranger.email},
        headers=world.headers(owner),
    )  # fmt: skip
    assert again.status_code == 403  # no longer the owner
