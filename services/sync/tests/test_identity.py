"""MISP clients authenticate with auth's API keys, verified from sync's own projection of
``auth.api_key.*`` (revocation, expiry and networks honoured), or with an access token; and
are users of one organisation with one of MISP's roles."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from .conftest import World

FAILED = (
    "Authentication failed. Please make sure you pass the API key of an API enabled user "
    "along in the Authorization header."
)


async def test_an_api_key_sent_as_misp_does_authenticates_its_user(world: World) -> None:
    org = await world.organisation("Lab")
    ada = await world.member("Ada", org)

    version = await world.client.get("/sync/servers/getVersion", headers=ada.headers)
    me = await world.client.get("/sync/users/view/me", headers=ada.headers)
    by_header = await world.client.get(
        "/sync/users/view/me", headers={"X-MISP-AUTH": ada.key, "Accept": "application/json"}
    )

    assert version.status_code == 200
    assert [int(p) for p in version.json()["version"].split(".")]  # dotted integers
    assert version.json()["pymisp_recommended_version"]
    body = me.json()
    assert set(body) >= {"User", "Role", "UserSetting", "Organisation"}
    assert body["User"]["email"] == ada.email
    assert body["Organisation"]["uuid"] == str(org)
    assert body["Role"]["name"] == "User"
    assert body["Role"]["perm_publish"] is False
    assert by_header.status_code == 200


async def test_an_organisation_admin_is_misps_org_admin(world: World) -> None:
    org = await world.organisation("Lab")
    boss = await world.member("Boss", org, role="admin")

    me = await world.client.get("/sync/users/view/me", headers=boss.headers)

    assert me.json()["Role"]["name"] == "Org Admin"
    assert me.json()["Role"]["perm_publish"] is True


@pytest.mark.parametrize("role", ["sync_user"])
async def test_a_user_given_a_role_in_settings_has_it(
    world: World, roles: dict[str, Any], role: str
) -> None:
    org = await world.organisation("Peer")
    peer = await world.member("Peer", org)
    world.app.state.runtime.settings.roles.users[peer.id] = role

    me = await world.client.get("/sync/users/view/me", headers=peer.headers)

    assert me.json()["Role"]["name"] == "Sync user"
    assert me.json()["Role"]["perm_sync"] is True


async def test_unknown_revoked_and_expired_keys_are_refused_in_misps_words(
    world: World,
) -> None:
    org = await world.organisation("Lab")
    ada = await world.member("Ada", org)
    await world.publish(
        "auth.api_key.revoked",
        {"api_key_id": str(ada.key_id), "user_id": str(ada.id),
         "key_hash": (await world.query("SELECT key_hash FROM api_keys WHERE id = $1",
                                        ada.key_id))[0]["key_hash"]},
        str(ada.id),
    )  # fmt: skip
    await _until(world, "SELECT 1 FROM api_keys WHERE id = $1 AND revoked_at IS NOT NULL",
                 ada.key_id)  # fmt: skip
    bob = await world.member("Bob", org)
    await world.query(
        "UPDATE api_keys SET expires_at = $2 WHERE id = $1",
        bob.key_id,
        datetime.now(UTC) - timedelta(seconds=1),
    )

    for headers in (ada.headers, bob.headers, {"Authorization": "tsk_nope_" + "x" * 40}, {}):
        refused = await world.client.get("/sync/users/view/me", headers=headers)
        assert refused.status_code == 403
        assert refused.json()["name"] == FAILED
        assert refused.json()["message"] == FAILED


async def test_a_key_bound_to_networks_is_refused_from_outside_them(world: World) -> None:
    org = await world.organisation("Lab")
    inside = await world.member("In", org, cidrs=["127.0.0.0/8"])
    outside = await world.member("Out", org, cidrs=["10.0.0.0/8"])

    assert (
        await world.client.get("/sync/users/view/me", headers=inside.headers)
    ).status_code == 200
    assert (
        await world.client.get("/sync/users/view/me", headers=outside.headers)
    ).status_code == 403


async def test_an_access_token_authenticates_too(world: World) -> None:
    org = await world.organisation("Lab")
    ada = await world.member("Ada", org)

    me = await world.client.get(
        "/sync/users/view/me", headers=world.tokens.bearer(ada.id) | {"Accept": "application/json"}
    )
    admin = await world.client.get(
        "/sync/users/view/me",
        headers=world.tokens.bearer(ada.id, roles=["superadmin"]) | {"Accept": "application/json"},
    )

    assert me.json()["User"]["email"] == ada.email
    assert admin.json()["Role"]["perm_site_admin"] is True


async def test_a_deleted_user_and_a_user_without_organisation_are_refused(world: World) -> None:
    org = await world.organisation("Lab")
    ada = await world.member("Ada", org)
    bob = await world.member("Bob", org)
    await world.publish("auth.user.deleted", {"user_id": str(ada.id)}, str(ada.id))
    await world.publish(
        "auth.membership.revoked", {"organisation_id": str(org), "user_id": str(bob.id)}, str(org)
    )
    await _until(world, "SELECT 1 FROM users WHERE uuid = $1 AND deleted_at IS NOT NULL", ada.id)
    await _until(world, "SELECT 1 FROM memberships WHERE user_uuid = $1 AND revoked_at IS NOT NULL",
                 bob.id)  # fmt: skip

    gone = await world.client.get("/sync/users/view/me", headers=ada.headers)
    orphan = await world.client.get("/sync/users/view/me", headers=bob.headers)

    assert gone.status_code == 403
    assert orphan.status_code == 403
    assert orphan.json()["code"] == "no_organisation"


async def _until(world: World, sql: str, *args: Any) -> None:
    from tessera.common.testing.broker import eventually

    await eventually(lambda: world.query(sql, *args), timeout=10, what=sql)


_ = uuid


async def test_the_openapi_documents_both_ways_in_on_every_route_that_needs_one(
    world: World,
) -> None:
    spec = world.app.openapi()
    schemes = spec["components"]["securitySchemes"]
    operations = [
        (path, method, op)
        for path, item in spec["paths"].items()
        for method, op in item.items()
        if method in ("get", "post", "put", "patch", "delete", "head")
    ]

    assert schemes["misp_key"] == {
        "type": "apiKey", "in": "header", "name": "Authorization",
        "description": schemes["misp_key"]["description"],
    }  # fmt: skip
    assert schemes["bearer"]["scheme"] == "bearer"
    secured = {(path, method) for path, method, op in operations if op.get("security")}
    assert ("/sync/events/add", "post") in secured
    assert ("/sync/servers/getVersion", "get") in secured
    for path, method, op in operations:
        if op.get("security"):
            assert op["security"] == [{"misp_key": []}, {"bearer": []}], (path, method)
