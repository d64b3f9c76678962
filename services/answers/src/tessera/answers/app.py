"""Composition root of the answers service."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from tessera.answers import models
from tessera.answers.settings import Settings
from tessera.common.http import create_service_app, instrument_app
from tessera.common.runtime import ServiceRuntime
from tessera.common.telemetry import configure_telemetry

__all__ = ["MIGRATIONS", "create_app", "create_app_from_env"]

MIGRATIONS = Path(__file__).resolve().parents[3] / "migrations"
PREFIX = "/answers"


def create_app(settings: Settings) -> FastAPI:
    runtime = ServiceRuntime(settings, tables=models.messaging, migrations_dir=MIGRATIONS)
    app = create_service_app(
        settings=settings,
        prefix=PREFIX,
        title="Tessera answers",
        description="Respondents' encrypted answers to an "
        "applet version; reviews, alerts and exports.",
        lifespan=runtime.lifespan,
        readiness=runtime.readiness,
        asyncapi=runtime.asyncapi,
    )
    instrument_app(app, configure_telemetry(settings.service_name), PREFIX)
    return app


def create_app_from_env() -> FastAPI:
    return create_app(Settings())
