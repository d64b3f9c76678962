"""Generate ``contracts/``: the JSON Schema of every published event, and each service's AsyncAPI.

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

from tessera.common.messaging import Envelope, Event

ROOT = Path(__file__).resolve().parents[1]
CONTRACTS = ROOT / "contracts"
SERVICES = ["auth", "applets", "answers", "mailer", "sync", "chat"]


def events_module(service: str) -> Any | None:
    try:
        return importlib.import_module(f"tessera.{service}.events")
    except ModuleNotFoundError:
        return None


def published(service: str) -> list[type[Event]]:
    module = events_module(service)
    return list(getattr(module, "PUBLISHED", [])) if module else []


def consumed(service: str) -> list[type[Event]]:
    module = events_module(service)
    return list(getattr(module, "CONSUMED", [])) if module else []


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
    settings_module = importlib.import_module(f"tessera.{service}.settings")
    settings = settings_module.Settings(_env_file=None, broker={"exchange": "tessera.events"})
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


def check() -> list[str]:
    problems = []
    expected = documents()
    for path, document in expected.items():
        if not path.exists():
            problems.append(f"missing {path.relative_to(ROOT)}")
        elif path.read_text() != render(document):
            problems.append(f"stale {path.relative_to(ROOT)}")
    for path in CONTRACTS.rglob("*.json"):
        if path not in expected:
            problems.append(f"unexpected {path.relative_to(ROOT)} (no code produces it)")
    return problems


def write() -> None:
    expected = documents()
    for path in CONTRACTS.rglob("*.json"):
        if path not in expected:
            path.unlink()
    for path, document in expected.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(render(document))
        print(f"wrote {path.relative_to(ROOT)}")


if __name__ == "__main__":
    if sys.argv[1:] == ["write"]:
        write()
    elif sys.argv[1:] == ["check"]:
        found = check()
        print("\n".join(found) or "contracts are up to date")
        sys.exit(1 if found else 0)
    else:
        sys.exit("usage: contracts.py write|check")
