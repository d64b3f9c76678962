"""Listing and replaying the dead-letter queue, by function and through the service CLI.

Promises: listing leaves every message where it was; replaying moves messages back to the
service's queue with their full retries, where a fixed handler processes them; ``--id``
replays only the messages named.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

import pytest
from typer.testing import CliRunner

from tessera.common.cli import service_cli
from tessera.common.messaging.dlq import list_dead_letters, replay_dead_letters
from tessera.common.messaging.envelope import Envelope, Event
from tessera.common.messaging.rabbit import EventConsumer

if TYPE_CHECKING:
    from conftest import Probe

pytestmark = pytest.mark.timeout(30)


class ThingHappened(Event):
    type: ClassVar[str] = "probe.thing.happened"
    version: ClassVar[int] = 1
    thing_id: uuid.UUID


class Handler:
    """Fails while ``broken`` (a bug, then fixed and deployed); records what it handled."""

    def __init__(self, probe: Probe, *, failures_after_fix: int = 0) -> None:
        self.probe = probe
        self.broken = True
        self.failures_after_fix = failures_after_fix
        self.calls: list[uuid.UUID] = []
        self.handled: list[uuid.UUID] = []

    async def __call__(self, envelope: Envelope, event: ThingHappened) -> None:
        self.calls.append(envelope.id)
        if self.broken:
            raise RuntimeError("template 'welcome' not found")
        if self.failures_after_fix > 0:
            self.failures_after_fix -= 1
            raise TimeoutError("smtp slow")
        self.handled.append(envelope.id)

    def consumer(self) -> EventConsumer:
        consumer = self.probe.consumer()
        consumer.on(ThingHappened, self)
        return consumer


def _envelope() -> Envelope:
    thing_id = uuid.uuid4()
    return Envelope.wrap(ThingHappened(thing_id=thing_id), producer="probe", subject=str(thing_id))


async def _dead_letter(probe: Probe, handler: Handler, *envelopes: Envelope) -> None:
    """Send ``envelopes`` through the broken handler until all of them are in the DLQ."""
    async with probe.consuming(handler.consumer()):
        for envelope in envelopes:
            await probe.publish_envelope(envelope)

        async def all_dead() -> bool:
            return await probe.message_count(probe.topology.dlq) == len(envelopes)

        await probe.eventually(all_dead, what="messages dead-lettered")


async def _dlq_holds(probe: Probe, count: int) -> None:
    """Peeked messages go back when the listing's channel closes, a few ms later at most."""

    async def holds() -> bool:
        return await probe.message_count(probe.topology.dlq) == count

    await probe.eventually(holds, timeout=2.0, what=f"{count} message(s) back in the DLQ")


async def test_listing_dead_letters_shows_them_and_leaves_them_in_the_dlq(probe: Probe) -> None:
    handler = Handler(probe)
    envelope = _envelope()
    await _dead_letter(probe, handler, envelope)

    first = await list_dead_letters(probe.amqp_url, probe.topology)
    second = await list_dead_letters(probe.amqp_url, probe.topology)

    [letter] = first
    assert second == first
    assert letter.message_id == str(envelope.id)
    assert letter.event_type == "probe.thing.happened"
    assert letter.routing_key == "probe.thing.happened.v1"
    assert letter.attempts == 3
    assert "template 'welcome' not found" in letter.error
    assert letter.failed_at
    assert Envelope.model_validate_json(letter.body) == envelope
    await _dlq_holds(probe, 1)


async def test_replayed_dead_letter_is_processed_by_the_fixed_handler_with_full_retries(
    probe: Probe,
) -> None:
    handler = Handler(probe, failures_after_fix=2)
    envelope = _envelope()
    await _dead_letter(probe, handler, envelope)
    assert len(handler.calls) == 3  # it used up its retries

    handler.broken = False  # the fix is deployed; the first two tries still time out
    async with probe.consuming(handler.consumer()):
        replayed = await replay_dead_letters(probe.amqp_url, probe.topology)
        await probe.eventually(lambda: handler.handled, what="replayed message handled")

    assert [letter.message_id for letter in replayed] == [str(envelope.id)]
    assert handler.handled == [envelope.id]
    assert len(handler.calls) == 3 + 3  # replayed with its retries: two failures, then done
    assert await probe.message_count(probe.topology.dlq) == 0
    assert await probe.message_count(probe.topology.queue) == 0


async def test_replaying_by_id_moves_only_the_named_messages(probe: Probe) -> None:
    handler = Handler(probe)
    wanted, other = _envelope(), _envelope()
    await _dead_letter(probe, handler, wanted, other)

    replayed = await replay_dead_letters(
        probe.amqp_url, probe.topology, message_ids={str(wanted.id)}
    )

    assert [letter.message_id for letter in replayed] == [str(wanted.id)]
    [left] = await list_dead_letters(probe.amqp_url, probe.topology)
    assert left.message_id == str(other.id)
    [back] = await probe.take_all(probe.topology.queue, expect=1)
    assert back.message_id == str(wanted.id)
    assert back.headers["x-tessera-replayed"] is True


async def test_service_cli_lists_the_dlq_as_json_and_replays_all_of_it(
    probe: Probe, tmp_path: Path
) -> None:
    handler = Handler(probe)
    envelope = _envelope()
    await _dead_letter(probe, handler, envelope)
    cli = service_cli(
        probe.settings_cls,
        migrations_dir=tmp_path,
        app_factory="tessera.probe.app:create_app_from_env",
        default_port=8999,
    )
    env = {
        "PROBE__BROKER__URL": probe.amqp_url,
        "PROBE__BROKER__EXCHANGE": probe.topology.exchange,
        "PROBE__BROKER__QUEUE_PREFIX": probe.topology.queue_prefix,
    }
    runner = CliRunner()

    # the commands call asyncio.run(): run them off this test's event loop
    listed = await asyncio.to_thread(runner.invoke, cli, ["dlq", "list", "--json"], env=env)
    assert listed.exit_code == 0, listed.output
    [row] = json.loads(listed.stdout)
    assert row["message_id"] == str(envelope.id)
    assert row["routing_key"] == "probe.thing.happened.v1"
    assert "template 'welcome' not found" in row["error"]
    await _dlq_holds(probe, 1)

    refused = await asyncio.to_thread(runner.invoke, cli, ["dlq", "replay"], env=env)
    assert refused.exit_code == 2
    assert await probe.message_count(probe.topology.dlq) == 1

    replayed = await asyncio.to_thread(runner.invoke, cli, ["dlq", "replay", "--all"], env=env)
    assert replayed.exit_code == 0, replayed.output
    assert "replayed 1 message(s)" in replayed.output
    assert await probe.message_count(probe.topology.dlq) == 0
    [back] = await probe.take_all(probe.topology.queue, expect=1)
    assert back.message_id == str(envelope.id)
