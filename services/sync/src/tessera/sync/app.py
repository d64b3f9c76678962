"""Composition root of the sync service."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from tessera.common.http import create_service_app, instrument_app
from tessera.common.runtime import ServiceRuntime
from tessera.common.telemetry import configure_telemetry
from tessera.sync import models
from tessera.sync.settings import Settings

__all__ = ["MIGRATIONS", "create_app", "create_app_from_env"]

MIGRATIONS = Path(__file__).resolve().parents[3] / "migrations"
PREFIX = "/sync"


def create_app(settings: Settings) -> FastAPI:
    runtime = ServiceRuntime(settings, tables=models.messaging, migrations_dir=MIGRATIONS)
    app = create_service_app(
        settings=settings,
        prefix=PREFIX,
        title="Tessera sync",
        description="MISP-style threat-intelligence events, attributes, objects, "
        "tags and sightings; pull/push between servers.",
        lifespan=runtime.lifespan,
        readiness=runtime.readiness,
        asyncapi=runtime.asyncapi,
    )
    instrument_app(app, configure_telemetry(settings.service_name), PREFIX)
    return app


def create_app_from_env() -> FastAPI:
    return create_app(Settings())
