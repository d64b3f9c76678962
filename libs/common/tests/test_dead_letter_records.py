"""How a dead letter reads in ``dlq list``: the consumer's own record, or RabbitMQ's.

Promises: a message the consumer dead-lettered shows its attempts, error, time and original
routing key from its headers; one that RabbitMQ dead-lettered (its consumer died on it each
time) says so, with the reason, the queue and the time from ``x-death``; a message with
neither shows empty fields, never an error.
"""

from __future__ import annotations

from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

from tessera.common.messaging.dlq import DeadLetter, _dead_letter
from tessera.common.messaging.rabbit import ATTEMPT, ERROR, FAILED_AT, ORIGINAL_KEY


def _message(headers: dict[str, Any], *, routing_key: str = "svc.events.dlq") -> Any:
    return SimpleNamespace(
        headers=headers,
        message_id="m-1",
        type="probe.thing.happened",
        routing_key=routing_key,
        body=b"{}",
    )


def test_a_dead_letter_of_the_consumer_shows_its_own_record() -> None:
    letter = _dead_letter(
        _message(
            {
                ATTEMPT: 3,
                ERROR: "RuntimeError('boom')",
                FAILED_AT: "2026-12-02T10:00:00+00:00",
                ORIGINAL_KEY: "probe.thing.happened.v1",
                "x-death": [{"reason": "expired", "queue": "svc.events.retry.1000ms"}],
            }
        )
    )
    assert letter == DeadLetter(
        message_id="m-1",
        event_type="probe.thing.happened",
        routing_key="probe.thing.happened.v1",
        attempts=3,
        error="RuntimeError('boom')",
        failed_at="2026-12-02T10:00:00+00:00",
        body=b"{}",
    )


def test_a_dead_letter_of_rabbitmq_after_the_delivery_limit_says_its_consumer_crashed() -> None:
    when = datetime(2026, 12, 2, 10, 0, tzinfo=UTC)
    letter = _dead_letter(
        _message(
            {
                "x-death": [
                    {"reason": "delivery_limit", "queue": "svc.events.quarantine", "time": when},
                    {"reason": "expired", "queue": "svc.events.retry.1000ms"},
                ]
            },
            routing_key="probe.thing.happened.v1",
        )
    )
    assert letter.error == (
        "dead-lettered by RabbitMQ (delivery_limit) from svc.events.quarantine: delivered "
        "again and again without being acknowledged (consumer crash)"
    )
    assert letter.failed_at == str(when)
    assert letter.routing_key == "probe.thing.happened.v1"
    assert letter.attempts == 0


def test_the_reason_may_come_from_the_first_death_header_and_the_queue_may_be_unknown() -> None:
    letter = _dead_letter(_message({"x-death": [{"count": 1}], "x-first-death-reason": "rejected"}))
    assert letter.error == "dead-lettered by RabbitMQ (rejected) from ?"
    assert letter.failed_at == ""


def test_a_message_with_no_record_at_all_reads_as_empty_fields() -> None:
    for headers in ({}, {"x-death": "not a list"}, {"x-death": []}, {"x-death": ["not a dict"]}):
        letter = _dead_letter(_message(headers))
        assert (letter.error, letter.failed_at, letter.attempts) == ("", "", 0), headers
        assert letter.routing_key == "svc.events.dlq"
    bare = SimpleNamespace(headers=None, message_id=None, type=None, routing_key=None, body=b"")
    assert _dead_letter(bare) == DeadLetter("", "", "", 0, "", "", b"")


def test_an_envelope_wraps_an_event_with_its_type_version_producer_and_subject() -> None:
    import uuid
    from datetime import timedelta
    from typing import ClassVar

    from tessera.common.messaging.envelope import Envelope, Event

    class Renamed(Event):
        type: ClassVar[str] = "probe.thing.renamed"
        version: ClassVar[int] = 2
        thing_id: uuid.UUID
        when: datetime

    thing, when = uuid.uuid4(), datetime(2026, 12, 2, tzinfo=UTC)
    before = datetime.now(UTC)
    envelope = Envelope.wrap(Renamed(thing_id=thing, when=when), producer="probe", subject="s-1")
    assert (envelope.type, envelope.version) == ("probe.thing.renamed", 2)
    assert (envelope.producer, envelope.subject) == ("probe", "s-1")
    assert envelope.data == {"thing_id": str(thing), "when": "2026-12-02T00:00:00Z"}
    assert envelope.routing_key == "probe.thing.renamed.v2"
    assert before <= envelope.occurred_at <= datetime.now(UTC) + timedelta(seconds=1)
    assert envelope.id.version == 4
    assert (
        Envelope.wrap(Renamed(thing_id=thing, when=when), producer="p", subject="s").id
        != envelope.id
    )


def test_the_events_exchange_is_durable_topic_with_its_alternate_only_when_declared() -> None:
    from faststream.rabbit import ExchangeType

    from tessera.common.messaging.rabbit import events_exchange

    declared = events_exchange("tessera.events", unrouted="tessera.unrouted")
    assert (declared.name, declared.type, declared.durable) == (
        "tessera.events",
        ExchangeType.TOPIC,
        True,
    )
    assert declared.arguments == {"alternate-exchange": "tessera.unrouted"}
    assert not events_exchange("tessera.events").arguments
