"""Composition root of the answers service: its description, from which the kit makes the
app, the CLI, the Alembic environment and the AsyncAPI document."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from tessera.answers import models
from tessera.answers.settings import Settings
from tessera.common import kit

__all__ = ["MIGRATIONS", "SERVICE", "create_app", "create_app_from_env"]

MIGRATIONS = Path(__file__).resolve().parents[3] / "migrations"

SERVICE = kit.ServiceSpec(
    name="answers",
    prefix="/answers",
    port=8003,
    title="Tessera answers",
    description=(
        "Respondents' encrypted answers to an applet version; reviews, alerts and exports."
    ),
    settings=Settings,
    tables=models.messaging,
    migrations=MIGRATIONS,
)


def create_app(settings: Settings) -> FastAPI:
    return kit.create_app(SERVICE, settings)


def create_app_from_env() -> FastAPI:
    return create_app(Settings())
