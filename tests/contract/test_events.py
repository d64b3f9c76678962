"""Event contracts between services: producers' schemas, consumers' trimmed models."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType

import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis_jsonschema import from_schema

from tessera.common.messaging import Envelope, Event

ROOT = Path(__file__).resolve().parents[2]


def _load_contracts() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "tessera_contracts", ROOT / "scripts/contracts.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


contracts = _load_contracts()

CONSUMED = [
    (service, event) for service in contracts.SERVICES for event in contracts.consumed(service)
]
PUBLISHED = [
    (service, event) for service in contracts.SERVICES for event in contracts.published(service)
]


def producer_schema(event: type[Event]) -> dict:
    producer = event.type.split(".")[0]
    path = ROOT / "contracts" / producer / f"{event.routing_key()}.json"
    assert path.exists(), (
        f"{event.routing_key()} is consumed but {producer} publishes no such event"
    )
    return json.loads(path.read_text())


def test_checked_in_contracts_match_the_code() -> None:
    assert contracts.check() == [], "run `make contracts`; commit contracts/ and docs/events.md"


def test_event_types_follow_the_naming_convention() -> None:
    for service, event in PUBLISHED:
        producer, _aggregate, verb = event.type.split(".")
        assert producer == service, f"{event.type} must be published by {producer}"
        assert verb.endswith("ed"), f"{event.type}: the verb is in the past tense"
        assert event.routing_key() == f"{event.type}.v{event.version}"


@pytest.mark.parametrize(("consumer", "event"), CONSUMED, ids=lambda v: getattr(v, "type", v))
def test_every_consumed_event_is_published_by_its_producer(
    consumer: str, event: type[Event]
) -> None:
    producer = event.type.split(".")[0]
    # a service may send itself work through its outbox (sync's pull items): then the
    # event is one it publishes; otherwise it consumes only what others publish
    assert producer != consumer or event in contracts.published(consumer)
    assert any(e.routing_key() == event.routing_key() for e in contracts.published(producer))
    producer_schema(event)


@pytest.mark.parametrize(("consumer", "event"), CONSUMED, ids=lambda v: getattr(v, "type", v))
def test_consumer_model_accepts_whatever_the_producer_schema_allows(
    consumer: str, event: type[Event]
) -> None:
    schema = producer_schema(event)

    @settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
    @given(from_schema(schema))
    def accepts(data: dict) -> None:
        parsed = event.model_validate(data)
        assert isinstance(parsed, event)

    accepts()


@pytest.mark.parametrize(("consumer", "event"), CONSUMED, ids=lambda v: getattr(v, "type", v))
def test_consumer_ignores_fields_it_does_not_know(consumer: str, event: type[Event]) -> None:
    producer = event.type.split(".")[0]
    full = next(e for e in contracts.published(producer) if e.routing_key() == event.routing_key())
    schema = producer_schema(event)

    @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
    @given(from_schema(schema))
    def tolerant(data: dict) -> None:
        event.model_validate({**data, "a_field_added_later": {"nested": [1, 2]}})
        full.model_validate(data)

    tolerant()


@pytest.mark.parametrize(("producer", "event"), PUBLISHED, ids=lambda v: getattr(v, "type", v))
def test_what_a_producer_serialises_validates_against_its_schema(
    producer: str, event: type[Event]
) -> None:
    schema = producer_schema(event)
    jsonschema.Draft202012Validator.check_schema(schema)
    envelope_schema = json.loads((ROOT / "contracts" / "envelope.json").read_text())

    @settings(max_examples=50, deadline=None, suppress_health_check=list(HealthCheck))
    @given(from_schema(schema))
    def round_trip(data: dict) -> None:
        instance = event.model_validate(data)
        jsonschema.validate(instance.model_dump(mode="json"), schema)
        envelope = Envelope.wrap(instance, producer=producer, subject="s-1")
        assert envelope.routing_key == event.routing_key()
        jsonschema.validate(envelope.model_dump(mode="json"), envelope_schema)

    round_trip()


@pytest.mark.parametrize("service", contracts.SERVICES)
def test_each_service_has_a_generated_asyncapi_document(service: str) -> None:
    document = json.loads((ROOT / "contracts" / service / "asyncapi.json").read_text())
    assert document["asyncapi"].startswith("3.")
    addresses = {c["address"] for c in document.get("channels", {}).values()}
    for event in contracts.published(service):
        assert event.routing_key() in addresses
    if contracts.consumed(service):
        assert f"{service}.events" in addresses
        consume = next(
            c for c in document["channels"].values() if c["address"] == f"{service}.events"
        )
        for event in contracts.consumed(service):
            assert event.routing_key() in consume["description"]
    assert "guest" not in json.dumps(document), "no credentials in published documents"
