"""Composition root of the applets service: its description, from which the kit makes the
app, the CLI, the Alembic environment and the AsyncAPI document."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from tessera.applets import handlers, models
from tessera.applets.api import ROUTERS
from tessera.applets.events import PUBLISHED
from tessera.applets.settings import Settings
from tessera.common import kit
from tessera.common.http import field_errors, problem_response
from tessera.common.security import KeySource

__all__ = ["MIGRATIONS", "SERVICE", "create_app", "create_app_from_env"]

MIGRATIONS = Path(__file__).resolve().parents[3] / "migrations"

SERVICE = kit.ServiceSpec(
    name="applets",
    prefix="/applets",
    port=8002,
    title="Tessera applets",
    description=(
        "Applets of activities, items of every response type, flows, immutable versions, "
        "per-applet roles, invitations and ownership transfers, ReproSchema import and export."
    ),
    settings=Settings,
    tables=models.messaging,
    migrations=MIGRATIONS,
    publishes=PUBLISHED,
    consumer=handlers.consumer,
    routers=ROUTERS,
)


def create_app(settings: Settings, *, key_source: KeySource | None = None) -> FastAPI:
    """The applets service; ``key_source`` replaces auth's JWKS (tests pass their own)."""
    app = kit.create_app(SERVICE, settings, key_source=key_source)
    app.add_exception_handler(RequestValidationError, _invalid_document)
    return app


def create_app_from_env() -> FastAPI:
    return create_app(Settings())


async def _invalid_document(request: Request, exc: RequestValidationError) -> JSONResponse:
    """The kernel's 422, each error also naming the activity and the item it is in (an
    editor shows "activity 'Daily check', item 'mood': ..." instead of an index path)."""
    errors = field_errors(exc)
    body = exc.body if isinstance(exc.body, dict) else {}
    for error, raw in zip(errors, exc.errors(), strict=True):
        _name_parts(error, list(raw.get("loc", ())), body)
    fields = ", ".join(e["field"] for e in errors)
    return problem_response(
        request,
        status=422,
        code="validation_failed",
        title="The request is not valid",
        detail=f"invalid: {fields}" if fields else None,
        errors=errors,
    )


def _name_parts(error: dict[str, Any], loc: list[Any], body: dict[str, Any]) -> None:
    if len(loc) < 3 or loc[0] != "body" or loc[1] != "activities" or not isinstance(loc[2], int):
        return
    activities = body.get("activities")
    if not isinstance(activities, list) or loc[2] >= len(activities):
        return
    activity = activities[loc[2]]
    if not isinstance(activity, dict):
        return
    if isinstance(activity.get("name"), str):
        error["activity"] = activity["name"]
    items = activity.get("items")
    if len(loc) <= 4 or loc[3] != "items" or not isinstance(loc[4], int):
        return
    if isinstance(items, list) and loc[4] < len(items) and isinstance(items[loc[4]], dict):
        name = items[loc[4]].get("name")
        if isinstance(name, str):
            error["item"] = name
