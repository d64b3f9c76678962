"""Signing-key rotation: old tokens keep verifying, the JWKS shows both keys, running
processes pick a rotation up without a restart, and ``tessera-auth keys`` drives it."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import jwt
from fastapi import FastAPI
from sqlalchemy import text
from typer.testing import CliRunner

from tessera.auth.cli import cli
from tessera.auth.keys import RELOAD_EVERY_S, KeyRing, rotate_signing_key
from tessera.auth.service.context import AuthContext
from tessera.auth.settings import Settings
from tessera.common.runtime import ServiceRuntime
from tessera.common.security import JWKSKeySource, TokenVerifier

JWKS = "/auth/.well-known/jwks.json"
PASSWORD = "correct horse battery staple"


async def _access_token(client: httpx.AsyncClient, email: str) -> str:
    response = await client.post("/auth/login", json={"email": email, "password": PASSWORD})
    assert response.status_code == 200, response.text
    return response.json()["access_token"]


def _kid(token: str) -> str:
    return jwt.get_unverified_header(token)["kid"]


async def _rotate(runtime: ServiceRuntime, settings: Settings) -> str:
    """What ``tessera-auth keys rotate`` does, from another process's point of view."""
    async with runtime.uow() as uow:
        key = await rotate_signing_key(uow.session, settings)
        await uow.commit()
    return key.kid


async def _me(client: httpx.AsyncClient, token: str) -> httpx.Response:
    return await client.get("/auth/me", headers={"Authorization": f"Bearer {token}"})


async def test_token_issued_before_a_rotation_still_verifies_and_jwks_lists_both_keys(
    client: httpx.AsyncClient,
    register: Any,
    email: str,
    auth_app: FastAPI,
    runtime: ServiceRuntime,
    auth_settings: Settings,
    query: Any,
) -> None:
    await register(email)
    before = await _access_token(client, email)
    old_kid = _kid(before)

    new_kid = await _rotate(runtime, auth_settings)
    await auth_app.state.runtime.get(AuthContext).keys.reload()

    after = await _access_token(client, email)
    assert _kid(after) == new_kid != old_kid
    kids = [k["kid"] for k in (await client.get(JWKS)).json()["keys"]]
    assert {old_kid, new_kid} <= set(kids)
    assert kids[0] == new_kid  # newest first
    # the old token verifies here and in any other service reading the JWKS
    assert (await _me(client, before)).status_code == 200
    verifier = TokenVerifier(auth_settings.jwt, JWKSKeySource(f"http://test{JWKS}", client=client))
    assert (await verifier.verify(before)).token_id == jwt.decode(
        before, options={"verify_signature": False}
    )["jti"]
    # retired for exactly as long as a token it signed can live
    [(retired_at, verify_until)] = await query(
        "SELECT retired_at, verify_until FROM signing_keys WHERE kid = :kid", kid=old_kid
    )
    grace = auth_settings.access_token_ttl_s + RELOAD_EVERY_S + auth_settings.jwt.leeway_s
    assert verify_until - retired_at == timedelta(seconds=grace)
    assert retired_at <= datetime.now(UTC)


async def test_a_key_past_verify_until_leaves_the_jwks_and_its_tokens_are_refused(
    client: httpx.AsyncClient,
    register: Any,
    email: str,
    auth_app: FastAPI,
    runtime: ServiceRuntime,
    auth_settings: Settings,
) -> None:
    await register(email)
    before = await _access_token(client, email)
    old_kid = _kid(before)
    new_kid = await _rotate(runtime, auth_settings)
    async with runtime.sessions() as session, session.begin():
        await session.execute(
            text(
                "UPDATE signing_keys SET verify_until = now() - interval '1 second' "
                "WHERE kid = :kid"
            ),
            {"kid": old_kid},
        )

    await auth_app.state.runtime.get(AuthContext).keys.reload()

    kids = {k["kid"] for k in (await client.get(JWKS)).json()["keys"]}
    assert new_kid in kids
    assert old_kid not in kids
    response = await _me(client, before)
    assert response.status_code == 401
    assert response.json()["detail"] == "token signed with an unknown key"


async def test_running_process_picks_up_a_rotation_by_its_periodic_reload(
    runtime: ServiceRuntime, auth_settings: Settings
) -> None:
    ring = KeyRing(auth_settings, reload_every_s=0.05)
    ring.bind(runtime.sessions)
    await ring.reload()
    old_kid = ring.signing_kid

    async with ring.reloading():
        new_kid = await _rotate(runtime, auth_settings)
        deadline = time.monotonic() + 3.0
        while ring.signing_kid != new_kid and time.monotonic() < deadline:
            await asyncio.sleep(0.02)

    assert ring.signing_kid == new_kid != old_kid
    assert {old_kid, new_kid} <= {k["kid"] for k in ring.jwks["keys"]}


async def test_token_with_a_kid_this_process_does_not_know_triggers_a_reload(
    client: httpx.AsyncClient,
    register: Any,
    email: str,
    auth_app: FastAPI,
    runtime: ServiceRuntime,
    auth_settings: Settings,
) -> None:
    """Replica B verifies a token that replica A signed with a key rotated in after B loaded."""
    await register(email)
    replica_b = KeyRing(auth_settings, reload_every_s=3600, min_reload_s=0)
    replica_b.bind(runtime.sessions)
    await replica_b.reload()
    new_kid = await _rotate(runtime, auth_settings)
    await auth_app.state.runtime.get(AuthContext).keys.reload()  # replica A
    token = await _access_token(client, email)
    assert _kid(token) == new_kid

    principal = await TokenVerifier(auth_settings.jwt, replica_b).verify(token)

    assert principal.token_id == jwt.decode(token, options={"verify_signature": False})["jti"]
    assert replica_b.signing_kid == new_kid


async def test_unknown_kid_reloads_are_rate_limited(
    runtime: ServiceRuntime, auth_settings: Settings
) -> None:
    """Forged tokens naming random kids cannot turn into one database query each."""
    ring = KeyRing(auth_settings, reload_every_s=3600, min_reload_s=3600)
    ring.bind(runtime.sessions)
    await ring.reload()
    new_kid = await _rotate(runtime, auth_settings)

    assert await ring.get(new_kid) is None  # just loaded: no reload for an unknown kid yet
    assert await ring.reload(force=False) is False
    assert await ring.reload() is True
    assert await ring.get(new_kid) is not None


def test_keys_rotate_and_list_commands(auth_settings: Settings) -> None:
    env = {
        "AUTH__DATABASE__URL": auth_settings.database.url.get_secret_value(),
        "AUTH__ENVIRONMENT": "test",
        "AUTH__KEY_ENCRYPTION_KEY": auth_settings.key_encryption_key.get_secret_value(),
    }
    runner = CliRunner()

    first = runner.invoke(cli, ["keys", "rotate"], env=env)
    rotated = runner.invoke(cli, ["keys", "rotate"], env=env)
    listed = runner.invoke(cli, ["keys", "list"], env=env)

    assert first.exit_code == 0, first.output
    assert rotated.exit_code == 0, rotated.output
    first_kid = first.output.split("new signing key ")[1].split()[0]
    new_kid = rotated.output.split("new signing key ")[1].split()[0]
    assert listed.exit_code == 0, listed.output
    rows = [
        [cell.strip() for cell in line.split("│") if cell.strip()]
        for line in listed.output.splitlines()
        if "EdDSA" in line
    ]
    assert len(rows) >= 2
    newest, previous = rows[0], rows[1]
    # kid, algorithm, created, retired, verify until; newest first
    assert newest[0] == new_kid
    assert previous[0] == first_kid
    assert newest[3:] == ["-", "-"]  # it signs: neither retired nor expiring
    assert previous[3] != "-"  # the previously active key is retired...
    assert previous[4] > previous[3] >= previous[2]  # ...and verifies until later


async def test_jwks_shows_a_key_rotated_in_by_another_process_without_waiting_for_the_reload(
    client: httpx.AsyncClient, auth_app: FastAPI, runtime: ServiceRuntime, auth_settings: Settings
) -> None:
    ring: KeyRing = auth_app.state.runtime.get(AuthContext).keys
    ring.min_reload_s = 0  # this process loaded its keys an instant ago, at start-up
    new_kid = await _rotate(runtime, auth_settings)

    kids = {k["kid"] for k in (await client.get(JWKS)).json()["keys"]}

    assert new_kid in kids
