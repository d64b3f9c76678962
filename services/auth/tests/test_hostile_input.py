"""Inputs PostgreSQL cannot take are refused as 422 before they reach it (found by fuzzing)."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from tessera.common.pagination import MAX_OFFSET

pytestmark = pytest.mark.usefixtures("auth_app")


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
async def admin_token(client: httpx.AsyncClient, register: Any, login_as: Any) -> str:
    """A user who administers an organisation (so the audit log is theirs to read)."""
    token: str = await login_as((await register())["email"])
    org = {"name": f"Org {uuid.uuid4().hex[:8]}"}
    response = await client.post("/auth/organisations", json=org, headers=_auth(token))
    assert response.status_code == 201, response.text
    return token


@pytest.mark.parametrize(
    "path", ["/auth/organisations", "/auth/api-keys", "/auth/audit", "/auth/sessions"]
)
async def test_an_offset_past_the_bound_is_422_not_a_database_overflow(
    client: httpx.AsyncClient, admin_token: str, path: str
) -> None:
    # 2**63 does not fit PostgreSQL's bigint OFFSET; far smaller ones are refused already
    for offset in (2**63, MAX_OFFSET + 1):
        response = await client.get(path, params={"offset": offset}, headers=_auth(admin_token))
        assert response.status_code == 422, response.text
        assert response.headers["content-type"] == "application/problem+json"
        assert [(e["in"], e["field"]) for e in response.json()["errors"]] == [("query", "offset")]
    response = await client.get(path, params={"offset": MAX_OFFSET}, headers=_auth(admin_token))
    assert response.status_code == 200, response.text
    assert response.json()["items"] == []


async def test_a_nul_in_an_organisation_name_is_422_naming_the_field(
    client: httpx.AsyncClient, admin_token: str
) -> None:
    response = await client.post(
        "/auth/organisations", json={"name": "Acme\x00 Corp"}, headers=_auth(admin_token)
    )
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["code"] == "validation_failed"
    assert [(e["in"], e["field"], e["type"]) for e in body["errors"]] == [
        ("body", "name", "string_nul")
    ]
    assert "name" in body["detail"]


async def test_a_nul_in_the_user_agent_is_422_not_a_server_error(
    client: httpx.AsyncClient, register: Any
) -> None:
    # the user agent of a login is stored with its session and in the audit log
    user = await register()
    response = await client.post(
        "/auth/login",
        json={"email": user["email"], "password": "correct horse battery staple"},
        headers={"user-agent": "curl/8\x00"},
    )
    assert response.status_code == 422, response.text
    assert [(e["in"], e["field"]) for e in response.json()["errors"]] == [("header", "user-agent")]
