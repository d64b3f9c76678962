"""A client cannot choose the address the services see, through the real nginx gateway.

The client connects from 127.0.0.1, like a process on the gateway's own host: the case in
which a forged ``X-Forwarded-For`` used to be believed (the services trusted that address
and the gateway appended to the client's header). Promises: a forged header changes
neither the address the rate limiter counts, nor the one the sessions list and the audit
log record; a request id that is not a short ASCII id is replaced by the gateway.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator

import httpx
import pytest
import redis
from tessera_e2e_harness import Suite

from tessera.common.testing import Infra

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("e2e"), pytest.mark.timeout(240)]

PASSWORD = "a long enough passphrase"
REGISTER_LIMIT = 10  # AUTH__RATE_LIMITS__REGISTER_PER_IP's default: 10 an hour per address
SOURCE = "127.0.0.1"


@pytest.fixture
def client(suite: Suite, infra: Infra) -> Iterator[httpx.Client]:
    """A client on 127.0.0.1 whose registration budget is whole before and after the test
    (the other e2e tests register from that address too)."""
    bucket = f"{infra.redis_prefix}auth:rl:register:ip:{SOURCE}"
    store = redis.Redis.from_url(infra.redis)
    store.delete(bucket)
    transport = httpx.HTTPTransport(local_address=SOURCE)
    try:
        with httpx.Client(base_url=suite.gateway, transport=transport, timeout=10) as c:
            yield c
    finally:
        store.delete(bucket)
        store.close()


def _forged(n: int) -> dict[str, str]:
    return {"X-Forwarded-For": f"198.51.100.{n}", "X-Real-IP": f"198.51.100.{n}"}


def test_forged_forwarded_for_does_not_get_a_fresh_rate_limit_per_request(
    client: httpx.Client,
) -> None:
    statuses = []
    for n in range(REGISTER_LIMIT + 5):
        response = client.post(
            "/auth/register",
            json={
                "email": f"xff-{uuid.uuid4().hex[:12]}@example.org",
                "password": PASSWORD,
                "full_name": "Forger",
            },
            headers=_forged(n),
        )
        statuses.append(response.status_code)

    assert statuses[:REGISTER_LIMIT] == [201] * REGISTER_LIMIT, statuses
    assert set(statuses[REGISTER_LIMIT:]) == {429}, statuses


def test_sessions_and_audit_record_the_connection_address_not_the_forged_one(
    client: httpx.Client,
) -> None:
    email = f"xff-{uuid.uuid4().hex[:12]}@example.org"
    created = client.post(
        "/auth/register",
        json={"email": email, "password": PASSWORD, "full_name": "Forger"},
        headers=_forged(1),
    )
    assert created.status_code == 201, created.text
    login = client.post(
        "/auth/login", json={"email": email, "password": PASSWORD}, headers=_forged(2)
    )
    assert login.status_code == 200, login.text
    auth = {"Authorization": f"Bearer {login.json()['access_token']}"} | _forged(3)

    [session] = client.get("/auth/sessions", headers=auth).json()["items"]
    assert session["ip_address"] == SOURCE

    org = client.post("/auth/organisations", json={"name": "Forgers Ltd"}, headers=auth)
    assert org.status_code == 201, org.text
    audit = client.get(f"/auth/audit?organisation_id={org.json()['id']}", headers=auth)
    assert audit.status_code == 200, audit.text
    addresses = {entry["ip_address"] for entry in audit.json()["items"]}
    assert addresses == {SOURCE}, addresses


@pytest.mark.parametrize("incoming", ["é" * 128, "x" * 65, "two words", "a\tb"])
def test_gateway_replaces_a_request_id_that_is_not_a_short_ascii_id(
    client: httpx.Client, incoming: str
) -> None:
    response = client.get("/auth/healthz", headers=[("X-Request-ID", incoming.encode())])
    assert response.status_code == 200
    assert response.headers["x-request-id"] != incoming
    assert re.fullmatch(r"[0-9a-f]{32}", response.headers["x-request-id"])


def test_gateway_keeps_a_short_ascii_request_id(client: httpx.Client) -> None:
    response = client.get("/auth/healthz", headers={"X-Request-ID": "client-req.42:a_b"})
    assert response.headers["x-request-id"] == "client-req.42:a_b"
