"""The sync service killed (SIGKILL) in the middle of a pull, then started again: the pull's
job still ends ``done``, every event of the remote is here once with all its attributes,
nothing counted twice. The suite (auth, sync, the gateway) is this test's own, on a database
and broker names of its own, so that no other sync process takes the pull's messages."""

from __future__ import annotations

import random
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from tessera_e2e_harness import Suite, running_suite, wait_for

from tessera.common.testing import (
    Infra,
    _create_database,
    _drop_broker_names,
    _drop_database,
    run_sync,
)
from tessera.sync.testing.fake_misp import Corpus, FakeMisp

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

PASSWORD = "a long enough passphrase"
EVENTS, ATTRIBUTES = 60, 300


@pytest.fixture
def own(infra: Infra, tmp_path: Path) -> Iterator[tuple[Suite, Infra]]:
    mine = Infra(infra.postgres_admin, infra.redis, infra.rabbitmq)
    run_sync(_create_database(mine))
    try:
        with running_suite(mine, tmp_path, services=("auth", "sync")) as suite:
            yield suite, mine
    finally:
        run_sync(_drop_broker_names(mine))
        run_sync(_drop_database(mine))


def _dsn(infra: Infra) -> str:
    return re.sub(r"/[^/]*$", f"/{infra.database}", infra.postgres_admin)


def _query(infra: Infra, sql: str, *args: Any) -> list[Any]:
    async def run() -> list[Any]:
        conn = await asyncpg.connect(_dsn(infra))
        try:
            return list(await conn.fetch(sql, *args))
        finally:
            await conn.close()

    return run_sync(run())


def _site_admin(client: httpx.Client, infra: Infra) -> dict[str, str]:
    """Registered through the gateway, made superadmin in auth's table (set-up only)."""
    email = f"kill-{uuid.uuid4().hex[:10]}@example.org"
    body = {"email": email, "password": PASSWORD}
    assert client.post("/auth/register", json=body | {"full_name": "K"}).status_code == 201
    first = client.post("/auth/login", json=body).json()["access_token"]
    made = client.post("/auth/organisations", json={"name": f"Kill {email}"},
                       headers={"Authorization": f"Bearer {first}"})  # fmt: skip
    assert made.status_code == 201, made.text
    _query(infra, "UPDATE auth.users SET is_superadmin = true WHERE email_normalized = $1",
           email.lower())  # fmt: skip
    token = client.post("/auth/login", json=body).json()["access_token"]
    headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
    wait_for(lambda: client.get("/sync/users/view/me", headers=headers).status_code == 200,
             timeout=30, what="sync's projection of the admin")  # fmt: skip
    return headers


def _attributes(client: httpx.Client, fake: FakeMisp, event_uuid: str) -> set[str]:
    """The uuids of the attributes a pull keeps of the event as the remote serves it: the
    first of each (type, category, value), as MISP collapses repeats."""
    base = fake.url.rstrip("/")
    headers = {"Authorization": fake.key, "Accept": "application/json"}
    served = client.get(f"{base}/events/view/{event_uuid}", headers=headers)
    kept: dict[tuple[str, str, str], str] = {}
    for a in served.json()["Event"]["Attribute"]:
        kept.setdefault((a["type"], a["category"], a["value"]), a["uuid"])
    return set(kept.values())


def test_a_pull_survives_the_sync_process_killed_mid_way(own: tuple[Suite, Infra]) -> None:
    suite, infra = own
    corpus = Corpus(events=EVENTS, attributes=ATTRIBUTES, seed=random.randrange(2**31))
    with FakeMisp(corpus) as fake, httpx.Client(base_url=suite.gateway, timeout=30) as client:
        headers = _site_admin(client, infra)
        added = client.post("/sync/servers/add", headers=headers, json={
            "name": "fake", "url": fake.url, "authkey": fake.key, "pull": True,
            "allow_private_addresses": True,
            "Organisation": {"uuid": str(uuid.uuid4()), "name": "Remote"},
        })  # fmt: skip
        assert added.status_code == 200, added.text
        started = client.get(f"/sync/servers/pull/{added.json()['Server']['id']}", headers=headers)
        job_url = started.json()["url"]

        def job() -> dict[str, Any]:
            answer = client.get(job_url, headers=headers)
            found: dict[str, Any] = answer.json() if answer.status_code == 200 else {}
            return found

        wait_for(lambda: job().get("fetched", 0) >= 5, timeout=60, what="a few events pulled")
        suite.processes["sync"].kill()  # SIGKILL: no shutdown, messages in flight unacked
        suite.processes["sync"].wait(timeout=10)
        [killed] = _query(infra, "SELECT fetched FROM sync.jobs WHERE id = $1",
                          uuid.UUID(started.json()["job_id"]))  # fmt: skip
        killed_at = killed["fetched"]
        suite.start("sync", suite.ports["sync"])
        done = wait_for(lambda: (j := job()).get("status") in ("done", "failed") and j, timeout=180,
                        what="the pull's job, after the restart")  # fmt: skip

        served = {u: _attributes(client, fake, u) for u in fake.uuids()}

    assert killed_at < EVENTS, "the kill came after the pull: nothing was tested"
    assert done["status"] == "done", done
    assert (done["fetched"], done["failed"], done["total"]) == (EVENTS, 0, EVENTS), done
    here = _query(
        infra,
        "SELECT e.uuid AS event, e.attribute_count, a.uuid AS attribute FROM sync.events e "
        "JOIN sync.attributes a ON a.event_id = e.id WHERE e.uuid = ANY($1::uuid[])",
        [uuid.UUID(u) for u in served],
    )
    by_event: dict[str, set[str]] = {}
    for row in here:
        by_event.setdefault(str(row["event"]), set()).add(str(row["attribute"]))
        assert row["attribute_count"] == len(served[str(row["event"])]), row
    assert by_event == served  # every event once, with exactly its attributes
    log = suite.logs["sync"].read_text(errors="replace")
    assert log.count("service_started") == 2  # the restart did happen
