"""Composition root of the answers service."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from tessera.answers import models
from tessera.answers.settings import Settings
from tessera.common.runtime import service_app

__all__ = ["MIGRATIONS", "create_app", "create_app_from_env"]

MIGRATIONS = Path(__file__).resolve().parents[3] / "migrations"
PREFIX = "/answers"


def create_app(settings: Settings) -> FastAPI:
    app, _ = service_app(
        settings,
        prefix=PREFIX,
        title="Tessera answers",
        description="Respondents' encrypted answers to an "
        "applet version; reviews, alerts and exports.",
        tables=models.messaging,
        migrations_dir=MIGRATIONS,
    )
    return app


def create_app_from_env() -> FastAPI:
    return create_app(Settings())
