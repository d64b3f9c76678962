"""Composition root of the applets service."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from tessera.applets import models
from tessera.applets.settings import Settings
from tessera.common.http import create_service_app, instrument_app
from tessera.common.runtime import ServiceRuntime
from tessera.common.telemetry import configure_telemetry

__all__ = ["MIGRATIONS", "create_app", "create_app_from_env"]

MIGRATIONS = Path(__file__).resolve().parents[3] / "migrations"
PREFIX = "/applets"


def create_app(settings: Settings) -> FastAPI:
    runtime = ServiceRuntime(settings, tables=models.messaging, migrations_dir=MIGRATIONS)
    app = create_service_app(
        settings=settings,
        prefix=PREFIX,
        title="Tessera applets",
        description="Applets of activities, items, flows, "
        "immutable versions, per-applet roles and invitations.",
        lifespan=runtime.lifespan,
        readiness=runtime.readiness,
        asyncapi=runtime.asyncapi,
    )
    instrument_app(app, configure_telemetry(settings.service_name), PREFIX)
    return app


def create_app_from_env() -> FastAPI:
    return create_app(Settings())
