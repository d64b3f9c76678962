"""Composition root of the sync service."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from tessera.common.runtime import service_app
from tessera.sync import models
from tessera.sync.settings import Settings

__all__ = ["MIGRATIONS", "create_app", "create_app_from_env"]

MIGRATIONS = Path(__file__).resolve().parents[3] / "migrations"
PREFIX = "/sync"


def create_app(settings: Settings) -> FastAPI:
    app, _ = service_app(
        settings,
        prefix=PREFIX,
        title="Tessera sync",
        description="MISP-style threat-intelligence events, attributes, objects, "
        "tags and sightings; pull/push between servers.",
        tables=models.messaging,
        migrations_dir=MIGRATIONS,
    )
    return app


def create_app_from_env() -> FastAPI:
    return create_app(Settings())
