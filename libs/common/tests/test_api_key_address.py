"""An API key restricted to networks is checked against the address of the connection.

Promises: a forged ``X-Forwarded-For`` from a client that is not a trusted proxy unlocks no
key; an address that cannot be parsed (from a proxy, or a stored network that does not
parse) is refused with 401, never a 500.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import Header

from tessera.common.http import create_service_app, current_request
from tessera.common.security import Unauthorized, api_key_usable, hash_api_key
from tessera.common.settings import ServiceSettings

KEY = "tsk_abc_" + "s" * 43
NOW = datetime.now(UTC)


@dataclass
class Key:
    allowed_cidrs: list[str] = field(default_factory=list)
    revoked_at: datetime | None = None
    expires_at: datetime | None = None


def _app(keys: dict[str, Key]) -> Any:
    settings = ServiceSettings(environment="test", http={"trusted_proxies": ["127.0.0.1"]})
    app = create_service_app(settings=settings, prefix="/probe", title="probe")

    @app.get("/probe/data")
    async def data(authorization: str = Header()) -> dict[str, str]:
        info = current_request()
        record = keys.get(hash_api_key(authorization))
        if not api_key_usable(record, client_ip=info.client_ip if info else None, now=NOW):
            raise Unauthorized("the API key is not valid from here")
        return {"ok": "yes"}

    return app


async def _call(app: Any, peer: str, forwarded_for: str | None = None) -> httpx.Response:
    headers = {"Authorization": KEY}
    if forwarded_for is not None:
        headers["X-Forwarded-For"] = forwarded_for
    transport = httpx.ASGITransport(app=app, client=(peer, 5000))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
        return await c.get("/probe/data", headers=headers)


async def test_forged_forwarded_for_does_not_unlock_a_key_for_that_network() -> None:
    app = _app({hash_api_key(KEY): Key(allowed_cidrs=["192.0.2.0/24"])})

    assert (await _call(app, "203.0.113.50", "192.0.2.10")).status_code == 401
    assert (await _call(app, "192.0.2.10")).status_code == 200
    # the gateway (trusted) saw the client at 192.0.2.10 and said so
    assert (await _call(app, "127.0.0.1", "192.0.2.10")).status_code == 200


@pytest.mark.parametrize("forwarded_for", ["garbage", "192.0.2.10, garbage", "::ffff:zz"])
async def test_unparsable_address_behind_the_gateway_is_401_not_500(forwarded_for: str) -> None:
    app = _app({hash_api_key(KEY): Key(allowed_cidrs=["192.0.2.0/24"])})
    response = await _call(app, "127.0.0.1", forwarded_for)
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"


def test_a_client_address_or_a_stored_network_that_does_not_parse_allows_nothing() -> None:
    assert not api_key_usable(Key(allowed_cidrs=["192.0.2.0/24"]), client_ip="nonsense", now=NOW)
    assert not api_key_usable(Key(allowed_cidrs=["192.0.2.0/24"]), client_ip="", now=NOW)
    assert not api_key_usable(Key(allowed_cidrs=["not/a/net"]), client_ip="192.0.2.1", now=NOW)
    assert api_key_usable(
        Key(allowed_cidrs=["not/a/net", "192.0.2.0/24"]), client_ip="192.0.2.1", now=NOW
    )
    assert not api_key_usable(
        Key(expires_at=NOW - timedelta(seconds=1)), client_ip="192.0.2.1", now=NOW
    )
