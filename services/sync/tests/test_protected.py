"""Protected events, as MISP 2.4.156+ keeps them: signed by the instance that sends them
(``x-pgp-signature``, OpenPGP), the signature checked against the keys the copy here trusts
(or, for a new event, those it lists) on ``events/add``, ``events/edit`` and pull, and
refused with MISP's words when it is missing or does not verify."""

from __future__ import annotations

import base64
import json
import os
import random
import shutil
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import anyio
import httpx
import pysequoia
import pytest
import typer
from typer.testing import CliRunner

from tessera.common.testing import Infra
from tessera.common.testing.broker import eventually
from tessera.sync import signing
from tessera.sync.commands import add_commands
from tessera.sync.service import protection
from tessera.sync.service.protection import FAILED, NO_SIGNATURE, PULL_FAILED
from tessera.sync.settings import Settings
from tessera.sync.testing.fake_misp import Corpus, FakeMisp

from .conftest import Instance, InstanceWorld, Member, World, running_peer

REMOTE_KEY = signing.new_key("remote instance")
OTHER_KEY = signing.new_key("someone else")
CONFIGURED_KEY = signing.new_key("configured")


def _as_sync_user(world: World, member: Member) -> None:
    world.app.state.runtime.settings.roles.users[member.id] = "sync_user"


def _key(key: signing.NewKey) -> dict[str, Any]:
    return {"type": "pgp", "key_data": key.key_data, "fingerprint": key.fingerprint}


def _protected(info: str, *keys: signing.NewKey, **fields: Any) -> dict[str, Any]:
    return {
        "uuid": str(uuid.uuid4()), "info": info, "distribution": "1", "protected": True,
        "locked": True, "timestamp": str(int(time.time()) - 100),
        "Attribute": [{"type": "domain", "value": f"d{random.randrange(10**9)}.example"}],
        "CryptographicKey": [_key(k) for k in keys], **fields,
    }  # fmt: skip


async def _post(
    world: World, path: str, member: Member, body: dict[str, Any], *,
    signed_by: signing.NewKey | None = None, sent: dict[str, Any] | None = None,
) -> httpx.Response:  # fmt: skip
    """POST ``sent`` (``body`` unless told), with the signature of ``body`` by ``signed_by``."""
    content = json.dumps({"Event": body}).encode()
    headers = member.headers | {"Content-Type": "application/json"}
    if signed_by is not None:
        headers["x-pgp-signature"] = signing.sign(signed_by.secret, content)
    if sent is not None:
        content = json.dumps({"Event": sent}).encode()
    return await world.client.post(path, content=content, headers=headers)


async def _trusted(world: World, event_uuid: str) -> set[str]:
    rows = await world.query(
        "SELECT k.fingerprint FROM cryptographic_keys k JOIN events e ON e.id = k.event_id "
        "WHERE e.uuid = $1",
        uuid.UUID(event_uuid),
    )
    return {r["fingerprint"] for r in rows}


# --- made here ------------------------------------------------------------------------------


async def test_an_event_protected_here_trusts_this_instance_and_is_viewed_signed(
    world: World,
) -> None:
    org = await world.organisation("Lab")
    ada = await world.member("Ada", org)
    added = await world.client.post(
        "/sync/events/add", headers=ada.headers,
        json={"info": "protected here", "protected": True,
              "Attribute": [{"type": "domain", "value": "p.example"}]},
    )  # fmt: skip
    assert added.status_code == 200, added.text
    event = added.json()["Event"]
    instance = await world.client.get("/sync/cryptographicKeys/instance", headers=ada.headers)
    signing_key = next(k for k in instance.json()["CryptographicKey"] if k["signing"])
    armored = await world.client.get("/sync/gpg.asc")

    viewed = await world.client.get(f"/sync/events/view/{event['uuid']}", headers=ada.headers)

    assert event["protected"] is True
    assert [k["fingerprint"] for k in event["CryptographicKey"]] == [signing_key["fingerprint"]]
    assert event["CryptographicKey"][0]["key_data"] == armored.text == signing_key["key_data"]
    signature = viewed.headers["x-pgp-signature"]
    assert signing.verify(viewed.content, signature, [armored.text]) == signing_key["fingerprint"]
    tampered = viewed.content.replace(b"protected here", b"protected there")
    with pytest.raises(signing.BadSignature):
        signing.verify(tampered, signature, [armored.text])
    plain = await world.client.post(
        "/sync/events/add", headers=ada.headers, json={"info": "not protected"}
    )
    unsigned = await world.client.get(
        f"/sync/events/view/{plain.json()['Event']['id']}", headers=ada.headers
    )
    assert "x-pgp-signature" not in unsigned.headers


async def test_protect_and_unprotect_switch_an_event_for_who_may_modify_it(
    world: World,
) -> None:
    org = await world.organisation("Lab")
    ada = await world.member("Ada", org)
    eve = await world.member("Eve", await world.organisation("Other"))
    added = await world.client.post(
        "/sync/events/add", headers=ada.headers, json={"info": "to protect", "distribution": 1}
    )
    event = added.json()["Event"]
    view = f"/sync/events/view/{event['id']}"

    refused = await world.client.post(f"/sync/events/protect/{event['id']}", headers=eve.headers)
    protected = await world.client.post(
        f"/sync/events/protect/{event['uuid']}", headers=ada.headers
    )
    signed = await world.client.get(view, headers=ada.headers)
    unprotected = await world.client.post(
        f"/sync/events/unprotect/{event['id']}", headers=ada.headers
    )
    plain = await world.client.get(view, headers=ada.headers)

    assert refused.status_code == 404  # MISP: "Invalid event" for who may not modify it
    assert protected.json()["message"] == "Event switched to protected mode."
    shown = signed.json()["Event"]
    assert shown["protected"] is True
    assert int(shown["timestamp"]) >= int(event["timestamp"])
    key_data = [k["key_data"] for k in shown["CryptographicKey"]]
    assert signing.verify(signed.content, signed.headers["x-pgp-signature"], key_data)
    assert unprotected.json()["message"] == "Event switched to unprotected mode."
    assert plain.json()["Event"]["protected"] is False
    assert "x-pgp-signature" not in plain.headers


async def test_a_rotated_instance_key_is_listed_first_and_signs_once_the_old_one_retires(
    world: World,
) -> None:
    runtime = world.app.state.runtime
    ring = runtime.get(protection.Keyring)
    org = await world.organisation("Lab")
    ada = await world.member("Ada", org)
    added = await world.client.post(
        "/sync/events/add", headers=ada.headers, json={"info": "rotated", "protected": True}
    )
    event = added.json()["Event"]
    old = event["CryptographicKey"][0]

    new = await protection.rotate(runtime.uow(), ring)
    still_old = await world.client.get(f"/sync/events/view/{event['id']}", headers=ada.headers)
    assert await protection.retire(runtime.uow(), old["fingerprint"])
    by_new = await world.client.get(f"/sync/events/view/{event['id']}", headers=ada.headers)

    listed = [k["fingerprint"] for k in still_old.json()["Event"]["CryptographicKey"]]
    assert listed == [old["fingerprint"], new]
    assert signing.verify(
        still_old.content, still_old.headers["x-pgp-signature"], [old["key_data"]]
    ) == old["fingerprint"]  # fmt: skip
    new_key = next(k for k in by_new.json()["Event"]["CryptographicKey"] if k["fingerprint"] == new)
    assert signing.verify(
        by_new.content, by_new.headers["x-pgp-signature"], [new_key["key_data"]]
    ) == new  # fmt: skip
    assert (await world.client.get("/sync/gpg.asc")).text == new_key["key_data"]


async def test_the_signing_key_is_rotated_and_retired_from_the_command_line(
    world: World, settings: Settings
) -> None:
    cli = typer.Typer()
    cli.callback()(lambda: None)
    add_commands(cli, settings=lambda: settings)

    def run(*args: str) -> Any:
        return CliRunner().invoke(cli, list(args))

    before = await anyio.to_thread.run_sync(run, "signing-keys", "--json")
    current = next(k for k in json.loads(before.output) if k["signing"])["fingerprint"]
    rotated = await anyio.to_thread.run_sync(run, "rotate-signing-key")
    new = rotated.output.strip()
    still = await anyio.to_thread.run_sync(run, "signing-keys")
    retired = await anyio.to_thread.run_sync(run, "retire-signing-key", current)
    again = await anyio.to_thread.run_sync(run, "retire-signing-key", current)
    after = await anyio.to_thread.run_sync(run, "signing-keys", "--json")

    assert rotated.exit_code == 0, rotated.output
    assert f"{current}  signing" in still.output  # the old key signs until it is retired
    assert retired.exit_code == 0, retired.output
    assert again.exit_code == 1
    states = {k["fingerprint"]: k for k in json.loads(after.output)}
    assert states[new]["signing"] is True
    assert states[current]["retired"] is not None


@pytest.mark.sync_settings(signing_key=str(pysequoia.Tsk.from_bytes(CONFIGURED_KEY.secret)))
async def test_the_key_the_settings_give_signs_what_is_protected_here(world: World) -> None:
    org = await world.organisation("Lab")
    ada = await world.member("Ada", org)
    added = await world.client.post(
        "/sync/events/add", headers=ada.headers, json={"info": "configured", "protected": True}
    )
    event = added.json()["Event"]
    viewed = await world.client.get(f"/sync/events/view/{event['id']}", headers=ada.headers)

    assert [k["fingerprint"] for k in event["CryptographicKey"]] == [CONFIGURED_KEY.fingerprint]
    signature = viewed.headers["x-pgp-signature"]
    found = signing.verify(viewed.content, signature, [CONFIGURED_KEY.key_data])
    assert found == CONFIGURED_KEY.fingerprint


@pytest.mark.skipif(shutil.which("gpg") is None, reason="needs GnuPG, as MISP uses it")
def test_gnupg_verifies_as_misp_does_what_a_key_made_by_gpg_signs_here(tmp_path: Any) -> None:
    """MISP (Crypt_GPG) takes a signature only from the key's primary key; a key made as
    MISP's instance key is (``gpg --quick-gen-key NAME ed25519 sign``), given in the settings,
    signs with it. And what such a key signs verifies here."""
    env = os.environ | {"GNUPGHOME": str(tmp_path)}

    def gpg(*args: str, data: bytes | None = None) -> bytes:
        return subprocess.run(["gpg", "--batch", "--pinentry-mode", "loopback",
                               "--passphrase", "", *args], input=data, env=env,
                              capture_output=True, check=True).stdout  # fmt: skip

    gpg("--quick-gen-key", "MISP <misp@example.org>", "ed25519", "sign", "never")
    secret = gpg("--armor", "--export-secret-keys", "misp@example.org").decode()
    key = signing.from_secret(secret)
    body = b'{"Event": {"info": "signed here"}}'
    (tmp_path / "body").write_bytes(signing.canonical(body))
    (tmp_path / "sig").write_bytes(base64.b64decode(signing.sign(key.secret, body)))
    status = gpg("--status-fd", "1", "--verify", str(tmp_path / "sig"), str(tmp_path / "body"))
    validsig = next(
        line for line in status.decode(errors="replace").splitlines() if "VALIDSIG" in line
    )
    assert validsig.split()[2] == key.fingerprint  # the signer is the primary key: MISP's check

    theirs = b'{"Event":{"info":"signed by MISP"}}'
    signed = gpg("--detach-sign", "-u", key.fingerprint, data=signing.canonical(theirs))
    found = signing.verify(theirs, base64.b64encode(signed).decode(), [key.key_data])
    assert found == key.fingerprint


# --- events/add and events/edit by a sync user ----------------------------------------------


async def test_a_sync_users_protected_event_is_added_only_signed_by_a_key_it_lists(
    world: World,
) -> None:
    org = await world.organisation("Peer")
    account = await world.member("Sync", org)
    _as_sync_user(world, account)
    body = _protected("pushed protected", REMOTE_KEY)

    missing = await _post(world, "/sync/events/add", account, body)
    tampered = await _post(world, "/sync/events/add", account, body, signed_by=REMOTE_KEY,
                           sent=body | {"info": "changed on the way"})  # fmt: skip
    unlisted = await _post(world, "/sync/events/add", account, body, signed_by=OTHER_KEY)
    added = await _post(world, "/sync/events/add", account, body, signed_by=REMOTE_KEY)

    assert (missing.status_code, missing.json()["title"]) == (405, NO_SIGNATURE)
    assert (tampered.status_code, tampered.json()["title"]) == (405, FAILED)
    assert (unlisted.status_code, unlisted.json()["title"]) == (405, FAILED)
    assert added.status_code == 200, added.text
    assert added.json()["Event"]["protected"] is True
    assert await _trusted(world, body["uuid"]) == {REMOTE_KEY.fingerprint}


async def test_an_edit_of_a_protected_event_verifies_with_the_keys_the_copy_here_trusts(
    world: World,
) -> None:
    org = await world.organisation("Peer")
    account = await world.member("Sync", org)
    _as_sync_user(world, account)
    body = _protected("to be edited", REMOTE_KEY)
    assert (await _post(world, "/sync/events/add", account, body, signed_by=REMOTE_KEY)).is_success
    edit = f"/sync/events/edit/{body['uuid']}"

    def newer(*keys: signing.NewKey, **fields: Any) -> dict[str, Any]:
        return body | {"timestamp": str(int(body["timestamp"]) + random.randrange(1, 50)),
                       "CryptographicKey": [_key(k) for k in keys], **fields}  # fmt: skip

    # a key the event lists only in the edit itself is no key the copy here trusts
    rotated_alone = newer(OTHER_KEY)
    refused = await _post(world, edit, account, rotated_alone, signed_by=OTHER_KEY)
    missing = await _post(world, edit, account, newer(REMOTE_KEY))
    tampered = await _post(world, edit, account, newer(REMOTE_KEY), signed_by=REMOTE_KEY,
                           sent=newer(REMOTE_KEY, info="changed on the way"))  # fmt: skip
    # rotation: the trusted key signs the edit that adds the new key...
    rotation = newer(REMOTE_KEY, OTHER_KEY, timestamp=str(int(body["timestamp"]) + 60))
    rotated = await _post(world, edit, account, rotation, signed_by=REMOTE_KEY)
    # ...and from then on the new key signs
    later = newer(OTHER_KEY, info="signed by the new key", timestamp=str(int(time.time())))
    by_new_key = await _post(world, edit, account, later, signed_by=OTHER_KEY)

    assert (refused.status_code, refused.json()["title"]) == (405, FAILED)
    assert (missing.status_code, missing.json()["title"]) == (405, NO_SIGNATURE)
    assert (tampered.status_code, tampered.json()["title"]) == (405, FAILED)
    assert rotated.status_code == 200, rotated.text
    assert by_new_key.status_code == 200, by_new_key.text
    assert by_new_key.json()["Event"]["info"] == "signed by the new key"
    assert await _trusted(world, body["uuid"]) == {OTHER_KEY.fingerprint}


async def test_the_creator_organisation_edits_its_protected_event_without_a_signature(
    world: World,
) -> None:
    """MISP checks signatures of sync users only: a user of the creator organisation edits
    their protected event as any other."""
    org = await world.organisation("Lab")
    ada = await world.member("Ada", org)
    added = await world.client.post(
        "/sync/events/add", headers=ada.headers, json={"info": "mine", "protected": True}
    )
    event = added.json()["Event"]
    edited = await world.client.post(
        f"/sync/events/edit/{event['id']}", headers=ada.headers, json={"info": "still mine"}
    )
    assert edited.status_code == 200, edited.text
    assert edited.json()["Event"]["protected"] is True
    assert edited.json()["Event"]["CryptographicKey"] == event["CryptographicKey"]


# --- pull -----------------------------------------------------------------------------------


@pytest.fixture
def fake() -> Iterator[FakeMisp]:
    corpus = Corpus(events=1, attributes=2, seed=random.randrange(2**31))
    with FakeMisp(corpus, signing_key=REMOTE_KEY.secret) as running:
        yield running


async def _admin(world: World) -> dict[str, str]:
    org = await world.organisation("Home")
    admin = await world.member("Admin", org, role="admin")
    return world.tokens.bearer(admin.id, roles=["superadmin"]) | {"Accept": "application/json"}


async def _server(world: World, headers: dict[str, str], **fields: Any) -> dict[str, Any]:
    added = await world.client.post(
        "/sync/servers/add",
        json={"name": "remote", "pull": True, "allow_private_addresses": True,
              "Organisation": {"uuid": str(uuid.uuid4()), "name": "Remote"}, **fields},
        headers=headers,
    )  # fmt: skip
    assert added.status_code == 200, added.text
    server: dict[str, Any] = added.json()["Server"]
    return server


async def _job(world: World, headers: dict[str, str], path: str) -> dict[str, Any]:
    started = await world.client.get(path, headers=headers)
    assert started.status_code == 200, started.text

    async def done() -> dict[str, Any] | None:
        job = (await world.client.get(started.json()["url"], headers=headers)).json()
        return job if job["status"] in ("done", "failed") else None

    job: dict[str, Any] = await eventually(done, timeout=30, what="the job")
    return job


def _remote_add(fake: FakeMisp, body: dict[str, Any]) -> None:
    response = httpx.post(
        f"{fake.url}/events/add", json={"Event": body}, headers={"Authorization": fake.key}
    )
    assert response.status_code == 200, response.text


def _remote_edit(fake: FakeMisp, body: dict[str, Any]) -> None:
    response = httpx.post(f"{fake.url}/events/edit/{body['uuid']}", json={"Event": body},
                          headers={"Authorization": fake.key})  # fmt: skip
    assert response.status_code == 200, response.text


async def _info(world: World, event_uuid: str) -> str | None:
    rows = await world.query("SELECT info FROM events WHERE uuid = $1", uuid.UUID(event_uuid))
    return rows[0]["info"] if rows else None


async def test_a_pull_takes_a_protected_event_only_when_its_signature_verifies(
    world: World, fake: FakeMisp
) -> None:
    headers = await _admin(world)
    server = await _server(world, headers, url=fake.url, authkey=fake.key)
    body = _protected("remote protected", REMOTE_KEY, published=True)
    _remote_add(fake, body)
    one = f"/sync/servers/pull/{server['id']}/{body['uuid']}"

    fake.unsigned.add(body["uuid"])
    unsigned = await _job(world, headers, one)
    fake.unsigned.clear()
    fake.tampered.add(body["uuid"])
    tampered = await _job(world, headers, one)
    nothing_yet = await _info(world, body["uuid"])
    fake.tampered.clear()
    pulled = await _job(world, headers, one)

    for refused in (unsigned, tampered):
        assert (refused["fetched"], refused["failed"]) == (0, 1), refused
        assert PULL_FAILED in refused["error"]
    assert nothing_yet is None  # nothing of it written
    assert (pulled["fetched"], pulled["failed"]) == (1, 0), pulled
    assert await _info(world, body["uuid"]) == "remote protected"
    assert await _trusted(world, body["uuid"]) == {REMOTE_KEY.fingerprint}

    # the remote's update lists another key and is signed by it: the copy here trusts
    # REMOTE_KEY only, so it is refused and the copy stays as it was
    fake.signing_key = OTHER_KEY.secret
    _remote_edit(fake, body | {"info": "new key", "timestamp": str(int(time.time()) - 50),
                               "CryptographicKey": [_key(OTHER_KEY)]})  # fmt: skip
    hijacked = await _job(world, headers, one)
    assert (hijacked["fetched"], hijacked["failed"]) == (0, 1), hijacked
    assert await _info(world, body["uuid"]) == "remote protected"
    # rotation done right: the trusted key signs the update that lists the new one
    fake.signing_key = REMOTE_KEY.secret
    both = [_key(REMOTE_KEY), _key(OTHER_KEY)]
    _remote_edit(fake, body | {"info": "rotating", "timestamp": str(int(time.time()) - 40),
                               "CryptographicKey": both})  # fmt: skip
    rotating = await _job(world, headers, one)
    fake.signing_key = OTHER_KEY.secret
    _remote_edit(fake, body | {"info": "rotated", "timestamp": str(int(time.time()) - 30),
                               "CryptographicKey": [_key(OTHER_KEY)]})  # fmt: skip
    rotated = await _job(world, headers, one)
    assert (rotating["fetched"], rotated["fetched"]) == (1, 1), (rotating, rotated)
    assert await _info(world, body["uuid"]) == "rotated"
    assert await _trusted(world, body["uuid"]) == {OTHER_KEY.fingerprint}


# --- two instances --------------------------------------------------------------------------

SYNC_ORG = uuid.uuid4()


@pytest.fixture(scope="module")
def peer(infra: Infra) -> Iterator[Instance]:
    """A second sync instance where the users of ``SYNC_ORG`` are sync users."""
    with running_peer(infra, SYNC_ORG) as other:
        yield other


@pytest.fixture
async def there(peer: Instance) -> AsyncIterator[InstanceWorld]:
    async with httpx.AsyncClient(base_url=peer.root, timeout=30) as client:
        yield InstanceWorld.of(peer, client)


async def test_two_instances_push_and_pull_a_protected_event_each_signing_its_own(
    world: World, there: InstanceWorld, peer: Instance
) -> None:
    headers = await _admin(world)
    account = await there.member("Sync", SYNC_ORG)
    added = await world.client.post(
        "/sync/events/add", headers=headers,
        json={"info": "protected at home", "protected": True, "distribution": "3",
              "published": True, "Attribute": [{"type": "domain", "value": "h.example"}]},
    )  # fmt: skip
    ours = added.json()["Event"]
    home_key = ours["CryptographicKey"][0]["fingerprint"]
    # added once the event is published (its publication pushed it nowhere)
    server = await _server(
        world, headers, name="peer", url=peer.url, authkey=account.key, push=True,
        Organisation={"uuid": str(SYNC_ORG), "name": "Peer"},
    )  # fmt: skip

    try:
        pushed = await _job(world, headers, f"/sync/servers/push/{server['id']}/{ours['uuid']}")
    finally:  # no later publication in this database pushes there
        await world.query("UPDATE servers SET push = false WHERE id = $1", int(server["id"]))

    assert (pushed["pushed"], pushed["failed"]) == (1, 0), pushed
    assert await _trusted(there, ours["uuid"]) == {home_key}
    received = await there.query("SELECT protected FROM events WHERE uuid = $1",
                                 uuid.UUID(ours["uuid"]))  # fmt: skip
    assert received[0]["protected"] is True

    # an event protected at the peer, pulled from it: signed by the peer's key, which it lists
    org = await there.organisation("Peer's own")
    author = await there.member("Author", org, role="admin")
    made = await there.client.post(
        "/sync/events/add", headers=author.headers,
        json={"info": "protected at the peer", "protected": True, "distribution": "3",
              "published": True, "Attribute": [{"type": "domain", "value": "p.example"}]},
    )  # fmt: skip
    theirs = made.json()["Event"]
    peer_key = theirs["CryptographicKey"][0]["fingerprint"]

    pulled = await _job(world, headers, f"/sync/servers/pull/{server['id']}/{theirs['uuid']}")

    assert (pulled["fetched"], pulled["failed"]) == (1, 0), pulled
    assert peer_key != home_key
    assert await _trusted(world, theirs["uuid"]) == {peer_key}
    assert await _info(world, theirs["uuid"]) == "protected at the peer"
