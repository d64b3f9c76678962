"""PyMISP from PyPI, unchanged, through the nginx gateway (``PyMISP("<gateway>/sync/", key)``):
a user registers with auth, creates an organisation and an API key; the sync service learns
them from auth's events (no call to auth), and the key works MISP-style. Then the PyMISP
lifecycle (create, edit, tag, sight, search, publish, delete), objects (add, update,
reference, delete) and every sample event of PyMISP's own tests, as the sync service's
in-process tests run them."""

from __future__ import annotations

import uuid
from pathlib import Path

import httpx
import pytest
from tessera_e2e_harness import Suite, wait_for

from tessera.sync.testing.pymisp_flows import lifecycle, objects, round_trip

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("e2e"), pytest.mark.timeout(300)]

PASSWORD = "a long enough passphrase"
SAMPLES = sorted(
    (Path(__file__).resolve().parents[2] / "services/sync/tests/data/misp").glob("*.json")
)


def _org_admin_key(client: httpx.Client) -> str:
    """An organisation's admin (its creator) and an API key, known to sync once returned."""
    email = f"misp-{uuid.uuid4().hex[:12]}@example.org"
    created = client.post(
        "/auth/register", json={"email": email, "password": PASSWORD, "full_name": "MISP user"}
    )
    assert created.status_code == 201, created.text
    login = client.post("/auth/login", json={"email": email, "password": PASSWORD})
    assert login.status_code == 200, login.text
    bearer = {"Authorization": f"Bearer {login.json()['access_token']}"}
    org = client.post(
        "/auth/organisations", json={"name": f"CERT {uuid.uuid4().hex[:8]}"}, headers=bearer
    )
    assert org.status_code == 201, org.text
    issued = client.post("/auth/api-keys", json={"name": "pymisp"}, headers=bearer)
    assert issued.status_code == 201, issued.text
    key = str(issued.json()["key"])

    def known() -> bool:
        me = client.get(
            "/sync/users/view/me", headers={"Authorization": key, "Accept": "application/json"}
        )
        return me.status_code == 200 and me.json()["Organisation"]["uuid"] == org.json()["id"]

    wait_for(known, timeout=20, what="sync's projection of the key and the membership")
    return key


def test_pymisp_works_unchanged_through_the_gateway(suite: Suite) -> None:
    with httpx.Client(base_url=suite.gateway, timeout=10) as client:
        key = _org_admin_key(client)

    lifecycle(f"{suite.gateway}/sync/", key)
    objects(f"{suite.gateway}/sync/", key)
    for sample in SAMPLES:
        # the sync service's own tests add the same files to this run's database
        round_trip(f"{suite.gateway}/sync/", key, sample, rename=True)
