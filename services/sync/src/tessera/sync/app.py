"""Composition root of the sync service: its description, from which the kit makes the
app, the CLI, the Alembic environment and the AsyncAPI document."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from tessera.common import kit
from tessera.sync import models
from tessera.sync.settings import Settings

__all__ = ["MIGRATIONS", "SERVICE", "create_app", "create_app_from_env"]

MIGRATIONS = Path(__file__).resolve().parents[3] / "migrations"

SERVICE = kit.ServiceSpec(
    name="sync",
    prefix="/sync",
    port=8005,
    title="Tessera sync",
    description=(
        "MISP-style threat-intelligence events, attributes, objects, tags and sightings; "
        "pull/push between servers."
    ),
    settings=Settings,
    tables=models.messaging,
    migrations=MIGRATIONS,
)


def create_app(settings: Settings) -> FastAPI:
    return kit.create_app(SERVICE, settings)


def create_app_from_env() -> FastAPI:
    return create_app(Settings())
