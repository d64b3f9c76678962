"""Composition root of the applets service."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from tessera.applets import models
from tessera.applets.settings import Settings
from tessera.common.runtime import service_app

__all__ = ["MIGRATIONS", "create_app", "create_app_from_env"]

MIGRATIONS = Path(__file__).resolve().parents[3] / "migrations"
PREFIX = "/applets"


def create_app(settings: Settings) -> FastAPI:
    app, _ = service_app(
        settings,
        prefix=PREFIX,
        title="Tessera applets",
        description="Applets of activities, items, flows, "
        "immutable versions, per-applet roles and invitations.",
        tables=models.messaging,
        migrations_dir=MIGRATIONS,
    )
    return app


def create_app_from_env() -> FastAPI:
    return create_app(Settings())
