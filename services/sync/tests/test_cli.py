"""``tessera-sync pull``, ``push`` and ``fetch-feed`` against the real database and broker: the
sync service runs in-process (its relay publishes what the command wrote, its consumers pull
from, push to and fetch the feed of the fake MISP) while the command, in a thread with its own
event loop, only writes the job and follows its row."""

from __future__ import annotations

import asyncio
import io
import json
import random
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import typer
from click.testing import Result
from rich.console import Console
from typer.testing import CliRunner

from tessera.common.testing.broker import eventually
from tessera.sync.commands import add_commands
from tessera.sync.progress import BarView
from tessera.sync.settings import Settings
from tessera.sync.testing.fake_misp import Corpus, FakeMisp

from .conftest import World


@pytest.fixture
def fake() -> Iterator[FakeMisp]:
    corpus = Corpus(events=6, attributes=5, orgs=2, seed=random.randrange(2**31))
    with FakeMisp(corpus) as running:
        yield running


@pytest.fixture
def sync_cli(settings: Settings) -> typer.Typer:
    cli = typer.Typer()

    @cli.callback()
    def _group() -> None:
        """tessera-sync's own commands, on the test's settings."""

    add_commands(cli, settings=lambda: settings)
    return cli


@pytest.fixture(autouse=True)
async def _push_off_afterwards(world: World) -> AsyncIterator[None]:
    """Every publication pushes to the servers with ``push`` on: those a test added stop
    pushing when it ends."""
    yield
    await world.query("UPDATE servers SET push = false WHERE push")


async def _run(cli: typer.Typer, *args: str) -> Result:
    # the command calls asyncio.run: it gets a thread, and this loop stays free to run the
    # service that does the pull
    return await asyncio.to_thread(CliRunner().invoke, cli, list(args))


async def _admin_headers(world: World) -> dict[str, str]:
    org = await world.organisation("Home")
    admin = await world.member("Admin", org, role="admin")
    return world.tokens.bearer(admin.id, roles=["superadmin"]) | {"Accept": "application/json"}


async def _server(world: World, fake: FakeMisp, **extra: Any) -> dict[str, Any]:
    """A server entry for the fake, added over HTTP by a site admin; named uniquely."""
    headers = await _admin_headers(world)
    added = await world.client.post(
        "/sync/servers/add",
        json={"name": f"fake-{uuid.uuid4().hex[:8]}", "url": fake.url, "authkey": fake.key,
              "pull": True, "allow_private_addresses": True,
              "Organisation": {"uuid": str(uuid.uuid4()), "name": "Remote"}, **extra},
        headers=headers | {"Accept": "application/json"},
    )  # fmt: skip
    assert added.status_code == 200, added.text
    server: dict[str, Any] = added.json()["Server"]
    return server


async def test_pull_by_name_follows_the_job_to_done_with_its_counts(
    world: World, fake: FakeMisp, sync_cli: typer.Typer
) -> None:
    server = await _server(world, fake)

    result = await _run(sync_cli, "pull", server["name"], "--json", "--interval", "0.1")

    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    final = lines[-1]
    assert {line["id"] for line in lines} == {final["id"]}  # one job, shown as it changed
    assert final["kind"] == "pull"
    assert final["server_id"] == int(server["id"])
    assert final["status"] == "done"
    assert (final["seen"], final["fetched"], final["skipped"], final["failed"]) == (6, 6, 0, 0)
    assert final["bytes"] > 0
    assert final["requested_by"] is None  # an operator, not a user
    stored = await world.query(
        "SELECT count(*) AS n FROM events WHERE uuid = ANY($1::uuid[])",
        [uuid.UUID(u) for u in fake.uuids()],
    )
    assert stored[0]["n"] == 6


async def test_pull_of_one_event_by_id_prints_its_job_then_plain_progress(
    world: World, fake: FakeMisp, sync_cli: typer.Typer
) -> None:
    server = await _server(world, fake)
    wanted = fake.event_uuid(2)

    result = await _run(sync_cli, "pull", server["id"], "--event", wanted, "--interval", "0.1")

    assert result.exit_code == 0, result.output
    job_id = uuid.UUID(result.stdout.strip())  # stdout: the job's id, and nothing else
    assert f"job {job_id} done: 1/1 (fetched 1, skipped 0, failed 0" in result.stderr
    assert "done: 1/1 fetched 1 skipped 0 failed 0" in result.stderr  # no terminal: lines
    [job] = await world.query("SELECT status, event_uuid, fetched FROM jobs WHERE id = $1", job_id)
    assert (job["status"], str(job["event_uuid"]), job["fetched"]) == ("done", wanted, 1)
    assert set(fake.counters.views) == {wanted}


async def test_pull_without_waiting_prints_the_job_and_the_service_runs_it(
    world: World, fake: FakeMisp, sync_cli: typer.Typer
) -> None:
    server = await _server(world, fake)

    result = await _run(sync_cli, "pull", server["name"], "--no-wait")

    assert result.exit_code == 0, result.output
    job_id = uuid.UUID(result.stdout.strip())
    assert "done" not in result.stderr  # it did not follow the job
    [job] = await eventually(
        lambda: world.query("SELECT fetched FROM jobs WHERE id = $1 AND status = 'done'", job_id),
        timeout=30,
        what="the job the command queued, run by the service",
    )
    assert job["fetched"] == 6


async def test_a_pull_whose_index_cannot_be_read_exits_1_with_the_jobs_error(
    world: World, fake: FakeMisp, sync_cli: typer.Typer
) -> None:
    server = await _server(world, fake, url="http://127.0.0.1:1")  # nothing listens there

    result = await _run(sync_cli, "pull", server["name"], "--interval", "0.1")

    assert result.exit_code == 1, result.output
    job_id = uuid.UUID(result.stdout.strip())
    assert f"job {job_id} failed: index: " in result.stderr
    [job] = await world.query("SELECT status, error FROM jobs WHERE id = $1", job_id)
    assert job["status"] == "failed"
    assert job["error"] in result.stderr


async def test_pull_starts_nothing_for_an_unknown_server_or_one_that_does_not_pull(
    world: World, fake: FakeMisp, sync_cli: typer.Typer
) -> None:
    no_pull = await _server(world, fake, pull=False)
    twice = f"twice-{uuid.uuid4().hex[:8]}"
    await _server(world, fake, name=twice)
    await _server(world, fake, name=twice)
    jobs_before = await world.query("SELECT count(*) AS n FROM jobs")

    unknown = await _run(sync_cli, "pull", f"nothing-{uuid.uuid4().hex}")
    unknown_id = await _run(sync_cli, "pull", str(2**40))
    ambiguous = await _run(sync_cli, "pull", twice)
    disabled = await _run(sync_cli, "pull", no_pull["name"])

    assert unknown.exit_code == 2
    assert "no server has the id or the name" in unknown.stderr
    assert unknown_id.exit_code == 2
    assert ambiguous.exit_code == 2
    assert f"2 servers are called '{twice}'" in ambiguous.stderr
    assert disabled.exit_code == 2
    assert "pulling off" in disabled.stderr
    assert not unknown.stdout
    assert not disabled.stdout
    jobs_after = await world.query("SELECT count(*) AS n FROM jobs")
    assert jobs_after[0]["n"] == jobs_before[0]["n"]


async def _published(world: World, org: uuid.UUID, distribution: int = 3) -> dict[str, Any]:
    """A published event of ``org``'s, added over MISP's route by one of its admins."""
    author = await world.member("Author", org, role="admin")
    added = await world.client.post(
        "/sync/events/add",
        json={"info": "to push", "distribution": str(distribution), "published": True,
              "Attribute": [{"type": "domain", "value": f"{uuid.uuid4().hex[:12]}.example"}]},
        headers=author.headers,
    )  # fmt: skip
    assert added.status_code == 200, added.text
    event: dict[str, Any] = added.json()["Event"]
    return event


async def test_push_of_one_event_by_id_or_uuid_follows_the_job_and_counts_what_it_pushed(
    world: World, fake: FakeMisp, sync_cli: typer.Typer
) -> None:
    org = await world.organisation("Pushing")
    event = await _published(world, org)  # before the server: its publication pushed nothing
    server = await _server(world, fake, push=True)

    first = await _run(sync_cli, "push", server["name"], "--event", event["id"], "--json",
                       "--interval", "0.1")  # fmt: skip
    again = await _run(sync_cli, "push", server["id"], "--event", event["uuid"],
                       "--interval", "0.1")  # fmt: skip

    assert first.exit_code == 0, first.output
    final = json.loads(first.stdout.splitlines()[-1])
    assert (final["kind"], final["status"], final["event_uuid"]) == ("push", "done", event["uuid"])
    assert (final["seen"], final["pushed"], final["skipped"], final["failed"]) == (1, 1, 0, 0)
    assert final["requested_by"] is None  # an operator, not a user
    assert event["uuid"] in fake.pushed
    assert again.exit_code == 0, again.output
    job_id = uuid.UUID(again.stdout.strip())
    # the fake has it as new now: its filterEventIdsForPush does not ask for it
    assert f"job {job_id} done: 1/1 (pushed 0, skipped 1, failed 0" in again.stderr
    assert "done: 1/1 pushed 0 skipped 1 failed 0" in again.stderr


async def test_push_of_everything_by_name_sends_what_the_rules_let_go(
    world: World, fake: FakeMisp, sync_cli: typer.Typer
) -> None:
    org = await world.organisation("Pushing")
    shared = [await _published(world, org) for _ in range(2)]
    private = await _published(world, org, distribution=0)
    # the rules keep the other tests' published events (same database) here
    server = await _server(world, fake, push=True, push_rules={"orgs": {"OR": [str(org)]}})

    result = await _run(sync_cli, "push", server["name"], "--json", "--interval", "0.1")

    assert result.exit_code == 0, result.output
    final = json.loads(result.stdout.splitlines()[-1])
    assert (final["status"], final["pushed"], final["failed"], final["total"]) == ("done", 2, 0, 2)
    assert final["skipped"] == final["seen"] - 2  # others' events, and the private one
    assert {e["uuid"] for e in shared} <= set(fake.pushed)
    assert private["uuid"] not in fake.pushed


async def test_push_starts_nothing_without_its_server_its_flag_or_its_event(
    world: World, fake: FakeMisp, sync_cli: typer.Typer
) -> None:
    off = await _server(world, fake)  # push is off by default
    on = await _server(world, fake, push=True)
    jobs_before = await world.query("SELECT count(*) AS n FROM jobs")

    unknown = await _run(sync_cli, "push", f"nothing-{uuid.uuid4().hex}")
    disabled = await _run(sync_cli, "push", off["name"])
    no_event = await _run(sync_cli, "push", on["name"], "--event", str(uuid.uuid4()))
    no_id = await _run(sync_cli, "push", on["name"], "--event", str(2**40))

    assert unknown.exit_code == 2
    assert "no server has the id or the name" in unknown.stderr
    assert disabled.exit_code == 2
    assert "pushing off" in disabled.stderr
    assert (no_event.exit_code, no_id.exit_code) == (2, 2)
    assert "no event here has the id or the uuid" in no_event.stderr
    assert not unknown.stdout
    assert not disabled.stdout
    assert not no_event.stdout
    jobs_after = await world.query("SELECT count(*) AS n FROM jobs")
    assert jobs_after[0]["n"] == jobs_before[0]["n"]


async def test_a_push_the_remote_does_not_answer_exits_1_with_the_jobs_error(
    world: World, fake: FakeMisp, sync_cli: typer.Typer
) -> None:
    event = await _published(world, await world.organisation("Pushing"))
    server = await _server(world, fake, push=True, url="http://127.0.0.1:1")  # nothing there

    result = await _run(sync_cli, "push", server["name"], "--event", event["uuid"],
                        "--interval", "0.1")  # fmt: skip

    assert result.exit_code == 1, result.output
    job_id = uuid.UUID(result.stdout.strip())
    assert f"job {job_id} failed: filterEventIdsForPush: " in result.stderr


async def _feed(world: World, fake: FakeMisp, **extra: Any) -> dict[str, Any]:
    """A feed entry for the fake's feed, added over HTTP by a site admin; named uniquely."""
    added = await world.client.post(
        "/sync/feeds/add",
        json={"Feed": {"name": f"feed-{uuid.uuid4().hex[:8]}", "provider": "Fake",
                       "url": f"{fake.url}/feed", "source_format": "misp", "enabled": True,
                       "allow_private_addresses": True, "distribution": 3, **extra}},
        headers=await _admin_headers(world),
    )  # fmt: skip
    assert added.status_code == 200, added.text
    feed: dict[str, Any] = added.json()["Feed"]
    return feed


async def test_fetch_feed_by_name_or_id_follows_the_job_and_counts_what_it_fetched(
    world: World, fake: FakeMisp, sync_cli: typer.Typer
) -> None:
    feed = await _feed(world, fake)

    result = await _run(sync_cli, "fetch-feed", feed["name"], "--json", "--interval", "0.1")
    again = await _run(sync_cli, "fetch-feed", feed["id"], "--interval", "0.1")

    assert result.exit_code == 0, result.output
    final = json.loads(result.stdout.splitlines()[-1])
    assert (final["kind"], final["feed_id"], final["status"]) == ("feed", int(feed["id"]), "done")
    assert (final["seen"], final["fetched"], final["skipped"], final["failed"]) == (6, 6, 0, 0)
    assert final["requested_by"] is None
    assert again.exit_code == 0, again.output
    job_id = uuid.UUID(again.stdout.strip())
    assert f"fetching feed {feed['id']} ({feed['name']}): job {job_id}" in again.stderr
    assert f"job {job_id} done: 0/0 (fetched 0" in again.stderr  # 304: the manifest's ETag


async def test_fetch_feed_starts_nothing_for_an_unknown_or_disabled_feed(
    world: World, fake: FakeMisp, sync_cli: typer.Typer
) -> None:
    disabled = await _feed(world, fake, enabled=False)
    twice = f"twice-{uuid.uuid4().hex[:8]}"
    await _feed(world, fake, name=twice)
    await _feed(world, fake, name=twice)

    unknown = await _run(sync_cli, "fetch-feed", f"nothing-{uuid.uuid4().hex}")
    off = await _run(sync_cli, "fetch-feed", disabled["name"], "--no-wait")
    ambiguous = await _run(sync_cli, "fetch-feed", twice)

    assert unknown.exit_code == 2
    assert "no feed has the id or the name" in unknown.stderr
    assert off.exit_code == 2
    assert "is not enabled" in off.stderr
    assert ambiguous.exit_code == 2
    assert f"2 feeds are called '{twice}'" in ambiguous.stderr
    assert not unknown.stdout
    assert not off.stdout
    assert not ambiguous.stdout


async def test_jobs_lists_the_latest_and_job_shows_or_follows_one(
    world: World, sync_cli: typer.Typer
) -> None:
    # a job nobody runs: no server, no outbox row (as when the service is not running)
    waiting = uuid.uuid4()
    await world.query(
        "INSERT INTO jobs (id, kind, status, created_at) VALUES ($1, 'pull', 'queued', now())",
        waiting,
    )

    listed = await _run(sync_cli, "jobs", "--json", "--limit", "50")
    table = await _run(sync_cli, "jobs")
    shown = await _run(sync_cli, "job", str(waiting), "--json")
    followed = await _run(sync_cli, "job", str(waiting), "--wait", "--timeout", "0.3")
    unknown = await _run(sync_cli, "job", str(uuid.uuid4()))

    assert listed.exit_code == 0, listed.output
    assert str(waiting) in [job["id"] for job in json.loads(listed.stdout)]
    assert table.exit_code == 0, table.output
    assert "sync jobs: the latest" in table.stdout
    assert shown.exit_code == 0, shown.output
    job = json.loads(shown.stdout)
    assert (job["id"], job["status"], job["total"]) == (str(waiting), "queued", None)
    assert followed.exit_code == 3
    assert "still queued" in followed.stderr
    assert "must be running" in followed.stderr
    assert unknown.exit_code == 2


def test_the_commands_are_part_of_tessera_sync_and_say_the_service_must_run() -> None:
    from tessera.sync.cli import cli

    for command in ("pull", "push", "fetch-feed"):
        result = CliRunner().invoke(cli, [command, "--help"], terminal_width=200)

        assert result.exit_code == 0, result.output
        assert "--no-wait" in result.output
        assert "must be running" in result.output


def test_the_bar_counts_every_entry_of_the_index_and_pulses_until_it_is_read() -> None:
    screen = io.StringIO()
    view = BarView(Console(file=screen, force_terminal=True, width=160))
    job = {"status": "running", "seen": 0, "total": None, "skipped": 0, "fetched": 0,
           "failed": 0, "bytes": 0}  # fmt: skip

    view.show(job)
    view.show(job | {"seen": 10, "total": 7, "skipped": 3, "fetched": 5, "failed": 1,
                     "bytes": 2_500_000})  # fmt: skip
    view.close()

    shown = screen.getvalue()
    assert "9/10" in shown  # skipped + fetched + failed, of every entry seen
    assert "fetched 5  skipped 3  failed 1  2.5 MB" in shown


def test_the_bar_of_a_push_counts_what_it_pushed() -> None:
    screen = io.StringIO()
    view = BarView(Console(file=screen, force_terminal=True, width=160))

    view.show({"kind": "push", "status": "running", "seen": 4, "total": 3, "skipped": 1,
               "fetched": 0, "pushed": 2, "failed": 0, "bytes": 1000})  # fmt: skip
    view.close()

    shown = screen.getvalue()
    assert "3/4" in shown
    assert "pushed 2  skipped 1  failed 0" in shown
