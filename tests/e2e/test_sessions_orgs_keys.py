"""Refresh rotation, logout, organisations, API keys and the audit log through the gateway."""

from __future__ import annotations

import uuid

import httpx
import pytest
from tessera_e2e_harness import Suite

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("e2e"), pytest.mark.timeout(240)]

PASSWORD = "a long enough passphrase"


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _user(client: httpx.Client) -> tuple[str, dict[str, object]]:
    email = f"e2e-{uuid.uuid4().hex[:12]}@example.org"
    created = client.post(
        "/auth/register", json={"email": email, "password": PASSWORD, "full_name": "E2E"}
    )
    assert created.status_code == 201, created.text
    tokens = client.post("/auth/login", json={"email": email, "password": PASSWORD})
    assert tokens.status_code == 200, tokens.text
    return email, tokens.json()


def test_refresh_rotates_logout_revokes_everywhere(suite: Suite) -> None:
    with httpx.Client(base_url=suite.gateway, timeout=10) as client:
        _, tokens = _user(client)
        rotated = client.post(
            "/auth/token/refresh", json={"refresh_token": tokens["refresh_token"]}
        )
        assert rotated.status_code == 200, rotated.text
        fresh = rotated.json()
        assert fresh["refresh_token"] != tokens["refresh_token"]
        access = str(fresh["access_token"])
        assert client.get("/auth/me", headers=_auth(access)).status_code == 200

        sessions = client.get("/auth/sessions", headers=_auth(access)).json()
        assert sessions["total"] == 1
        assert sessions["items"][0]["current"] is True

        assert client.post("/auth/logout", headers=_auth(access)).status_code == 204
        assert client.get("/auth/me", headers=_auth(access)).status_code == 401
        refused = client.post("/auth/token/refresh", json={"refresh_token": fresh["refresh_token"]})
        assert refused.status_code == 401
        assert refused.json()["code"] == "invalid_refresh_token"


def test_reusing_a_rotated_refresh_token_kills_the_family(suite: Suite) -> None:
    with httpx.Client(base_url=suite.gateway, timeout=10) as client:
        _, tokens = _user(client)
        stolen = tokens["refresh_token"]
        rotated = client.post("/auth/token/refresh", json={"refresh_token": stolen}).json()
        replay = client.post("/auth/token/refresh", json={"refresh_token": stolen})
        assert replay.status_code == 401
        assert (
            client.get("/auth/me", headers=_auth(str(rotated["access_token"]))).status_code == 401
        )
        again = client.post("/auth/token/refresh", json={"refresh_token": rotated["refresh_token"]})
        assert again.status_code == 401


def test_organisation_members_api_keys_and_audit(suite: Suite) -> None:
    with httpx.Client(base_url=suite.gateway, timeout=10) as client:
        _, owner = _user(client)
        member_email, member = _user(client)
        token = str(owner["access_token"])
        org = client.post(
            "/auth/organisations",
            json={"name": f"E2E {uuid.uuid4().hex[:8]}"},
            headers=_auth(token),
        )
        assert org.status_code == 201, org.text
        org_id = org.json()["id"]
        added = client.post(
            f"/auth/organisations/{org_id}/members",
            json={"email": member_email, "role": "member"},
            headers=_auth(token),
        )
        assert added.status_code == 201, added.text
        visible = client.get(
            f"/auth/organisations/{org_id}", headers=_auth(str(member["access_token"]))
        )
        assert visible.status_code == 200

        key = client.post("/auth/api-keys", json={"name": "e2e"}, headers=_auth(token))
        assert key.status_code == 201, key.text
        assert key.json()["key"].startswith("tsk_")
        listed = client.get("/auth/api-keys", headers=_auth(token)).json()
        assert "key" not in listed["items"][0]

        audit = client.get(f"/auth/audit?organisation_id={org_id}", headers=_auth(token))
        assert audit.status_code == 200, audit.text
        actions = {entry["action"] for entry in audit.json()["items"]}
        assert {"organisation.created", "membership.granted"} <= actions
        assert (
            client.get("/auth/audit", headers=_auth(str(member["access_token"]))).status_code == 403
        )
