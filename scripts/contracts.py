"""Generate ``contracts/`` and ``docs/events.md`` from the code.

``contracts/`` holds the JSON Schema of every published event and each service's AsyncAPI;
``docs/events.md`` is the catalogue of events: producer, consumers, schema, fields.
Producers and consumers are found the same way everywhere: each installed service's
description (``tessera.common.suite``): its ``publishes``, and the events its ``consumer``
has handlers for.

``python scripts/contracts.py write`` rewrites the files (``make contracts``);
``python scripts/contracts.py check`` fails when a checked-in file differs from the code
(``tests/contract`` runs the same check).
"""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path
from typing import Any

from tessera.common import suite
from tessera.common.messaging import Envelope, Event

ROOT = Path(__file__).resolve().parents[1]
CONTRACTS = ROOT / "contracts"
EVENTS_DOC = ROOT / "docs" / "events.md"
SERVICES = list(suite.specs())  # every installed service, in port order


def published(service: str) -> list[type[Event]]:
    """What the service's description says it publishes."""
    return list(suite.specs()[service].publishes)


def consumed(service: str) -> list[type[Event]]:
    """The trimmed models its consumer has handlers for."""
    consumer = suite.specs()[service].consumer
    return consumer.events if consumer is not None else []


UUID_PATTERN = "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"


def _assert_formats(node: Any) -> Any:
    """JSON Schema formats only annotate; make the ones we rely on assertions."""
    if isinstance(node, dict):
        if node.get("format") == "uuid" and "pattern" not in node:
            node["pattern"] = UUID_PATTERN
        for value in node.values():
            _assert_formats(value)
    elif isinstance(node, list):
        for value in node:
            _assert_formats(value)
    return node


def event_schema(event: type[Event], producer: str) -> dict[str, Any]:
    """The schema of ``data`` as the producer serialises it."""
    schema = _assert_formats(event.model_json_schema(mode="serialization"))
    schema["$id"] = f"https://tessera.dev/contracts/{producer}/{event.routing_key()}.json"
    schema["title"] = event.routing_key()
    schema["description"] = (event.__doc__ or "").strip()
    schema["x-tessera-type"] = event.type
    schema["x-tessera-version"] = event.version
    schema["x-tessera-producer"] = producer
    return schema


def asyncapi(service: str) -> dict[str, Any]:
    app_module = importlib.import_module(f"tessera.{service}.app")
    settings_cls = suite.specs()[service].settings
    settings = settings_cls(_env_file=None, broker={"exchange": "tessera.events"})  # type: ignore[call-arg]
    app = app_module.create_app(settings)
    document: dict[str, Any] = app.state.asyncapi()
    document.pop("servers", None)
    for channel in document.get("channels", {}).values():
        channel.pop("servers", None)
    return document


def documents() -> dict[Path, dict[str, Any]]:
    out: dict[Path, dict[str, Any]] = {}
    envelope = _assert_formats(Envelope.model_json_schema(mode="serialization"))
    envelope["$id"] = "https://tessera.dev/contracts/envelope.json"
    out[CONTRACTS / "envelope.json"] = envelope
    for service in SERVICES:
        for event in published(service):
            out[CONTRACTS / service / f"{event.routing_key()}.json"] = event_schema(event, service)
        out[CONTRACTS / service / "asyncapi.json"] = asyncapi(service)
    return out


def render(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2, sort_keys=True) + "\n"


def _one_line(text: str) -> str:
    """A docstring or description as one Markdown table-safe line."""
    return " ".join(text.split()).replace("|", "\\|")


def _type_of(node: dict[str, Any]) -> str:
    """A short human form of a JSON Schema property: ``string (uuid)``, ``string or null``."""
    if "anyOf" in node:
        return " or ".join(_type_of(option) for option in node["anyOf"])
    if "$ref" in node:
        return f"object (`{node['$ref'].rsplit('/', 1)[-1]}`)"
    kind = node.get("type", "any")
    if kind == "array":
        return f"array of {_type_of(node.get('items', {}))}"
    if "format" in node:
        return f"{kind} ({node['format']})"
    if "enum" in node:
        return " or ".join(f"`{v}`" for v in node["enum"])
    return str(kind)


def _constraints(node: dict[str, Any]) -> list[str]:
    found = [f"default `{json.dumps(node['default'])}`"] if "default" in node else []
    for key, label in (("minLength", "min length"), ("maxLength", "max length")):
        if key in node:
            found.append(f"{label} {node[key]}")
    for key, label in (("minimum", "≥"), ("maximum", "≤")):
        if key in node:
            found.append(f"{label} {node[key]}")
    if "pattern" in node and node.get("format") != "uuid":
        found.append(f"pattern `{node['pattern']}`".replace("|", "\\|"))
    return found


def consumers_of(event: type[Event]) -> list[tuple[str, type[Event]]]:
    """Each service that consumes ``event`` (same routing key), with its trimmed model."""
    return [
        (service, model)
        for service in SERVICES
        for model in consumed(service)
        if model.routing_key() == event.routing_key()
    ]


def _link(path: Path) -> str:
    """A link from ``docs/`` to a file of the repository."""
    target = path.relative_to(ROOT).as_posix()
    return f"[`{target}`](../{target})"


def events_catalogue() -> str:
    """``docs/events.md``: every published event with its producer, consumers and fields."""
    lines = [
        "# Event catalogue",
        "",
        "<!-- Generated by scripts/contracts.py from the code: do not edit by hand; run",
        "     `make contracts` after changing an event (tests/contract checks it is current). -->",
        "",
        "Every event goes to the topic exchange `tessera.events` under its routing key",
        "`<type>.v<version>`, inside the envelope `{id, type, version, occurred_at, producer,",
        f"subject, data}}` ({_link(CONTRACTS / 'envelope.json')}); the schemas describe `data`.",
        "A producer names its events in its description's `publishes`; a consumer registers a",
        "handler for its own trimmed model with `consumer.on(Model, handler)`. How events travel:",
        "[architecture.md](architecture.md#events); how to add one:",
        "[conventions.md](conventions.md#adding-an-event).",
        "",
        "| routing key | producer | consumers | schema |",
        "| --- | --- | --- | --- |",
    ]
    sections: list[str] = []
    for producer in SERVICES:
        for event in sorted(published(producer), key=lambda e: e.routing_key()):
            key = event.routing_key()
            consumers = consumers_of(event)
            readers = ", ".join(service for service, _ in consumers) or "none yet"
            schema_path = CONTRACTS / producer / f"{key}.json"
            anchor = key.replace(".", "")  # GitHub's anchor of the heading "## <key>"
            row = f"| [`{key}`](#{anchor}) | {producer} | {readers} | {_link(schema_path)} |"
            lines.append(row)
            sections += _event_section(event, producer, consumers, schema_path)
    lines.append("")
    lines += _queues_section()
    lines += sections
    return "\n".join(lines).rstrip() + "\n"


def _event_section(
    event: type[Event],
    producer: str,
    consumers: list[tuple[str, type[Event]]],
    schema_path: Path,
) -> list[str]:
    schema = event_schema(event, producer)
    required = set(schema.get("required", []))
    readers = ", ".join(
        f"{service} (`{model.__module__}.{model.__name__}`)" for service, model in consumers
    )
    out = [
        f"## {event.routing_key()}",
        "",
        _one_line(event.__doc__ or "") or "(no description)",
        "",
        f"- type `{event.type}`, version {event.version}",
        f"- producer: {producer} (`{event.__module__}.{event.__name__}`)",
        f"- consumers: {readers or 'none yet'}",
        f"- schema: {_link(schema_path)}",
        "",
        "| field | type | required | description | read by |",
        "| --- | --- | --- | --- | --- |",
    ]
    for name, node in schema.get("properties", {}).items():
        notes = [_one_line(node["description"])] if node.get("description") else []
        notes += _constraints(node)
        read_by = [service for service, model in consumers if name in model.model_fields]
        out.append(
            f"| `{name}` | {_type_of(node)} | {'yes' if name in required else 'no'} | "
            f"{'; '.join(notes)} | {', '.join(read_by)} |"
        )
    out.append("")
    return out


def _queues_section() -> list[str]:
    out = [
        "## Consumer queues",
        "",
        "Each consuming service has one quorum queue `<service>.events` bound to every routing",
        "key it handles, with its retry queues `<service>.events.retry.<delay>ms` and its",
        "dead-letter queue `<service>.events.dlq` beside it.",
        "",
        "| service | queue | bound routing keys |",
        "| --- | --- | --- |",
    ]
    for service in SERVICES:
        keys = sorted(model.routing_key() for model in consumed(service))
        if keys:
            bound = ", ".join(f"`{k}`" for k in keys)
            out.append(f"| {service} | `{service}.events` | {bound} |")
    out.append("")
    return out


def generated() -> dict[Path, str]:
    """Every generated file and the text it must have."""
    out = {path: render(document) for path, document in documents().items()}
    out[EVENTS_DOC] = events_catalogue()
    return out


def check() -> list[str]:
    problems = []
    expected = generated()
    for path, text in expected.items():
        if not path.exists():
            problems.append(f"missing {path.relative_to(ROOT)}")
        elif path.read_text() != text:
            problems.append(f"stale {path.relative_to(ROOT)}")
    for path in CONTRACTS.rglob("*.json"):
        if path not in expected:
            problems.append(f"unexpected {path.relative_to(ROOT)} (no code produces it)")
    return problems


def write() -> None:
    expected = generated()
    for path in CONTRACTS.rglob("*.json"):
        if path not in expected:
            path.unlink()
    for path, text in expected.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        print(f"wrote {path.relative_to(ROOT)}")


if __name__ == "__main__":
    if sys.argv[1:] == ["write"]:
        write()
    elif sys.argv[1:] == ["check"]:
        found = check()
        print("\n".join(found) or "contracts and docs/events.md are up to date")
        sys.exit(1 if found else 0)
    else:
        sys.exit("usage: contracts.py write|check")
