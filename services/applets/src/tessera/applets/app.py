"""Composition root of the applets service: its description, from which the kit makes the
app, the CLI, the Alembic environment and the AsyncAPI document."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from tessera.applets import models
from tessera.applets.events import PUBLISHED
from tessera.applets.settings import Settings
from tessera.common import kit

__all__ = ["MIGRATIONS", "SERVICE", "create_app", "create_app_from_env"]

MIGRATIONS = Path(__file__).resolve().parents[3] / "migrations"

SERVICE = kit.ServiceSpec(
    name="applets",
    prefix="/applets",
    port=8002,
    title="Tessera applets",
    description=(
        "Applets of activities, items, flows, immutable versions, per-applet roles and invitations."
    ),
    settings=Settings,
    tables=models.messaging,
    migrations=MIGRATIONS,
    publishes=PUBLISHED,
)


def create_app(settings: Settings) -> FastAPI:
    return kit.create_app(SERVICE, settings)


def create_app_from_env() -> FastAPI:
    return create_app(Settings())
