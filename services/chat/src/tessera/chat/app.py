"""Composition root of the chat service: its description, from which the kit makes the
app, the CLI, the Alembic environment and the AsyncAPI document."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from tessera.chat import models
from tessera.chat.settings import Settings
from tessera.common import kit

__all__ = ["MIGRATIONS", "SERVICE", "create_app", "create_app_from_env"]

MIGRATIONS = Path(__file__).resolve().parents[3] / "migrations"

SERVICE = kit.ServiceSpec(
    name="chat",
    prefix="/chat",
    port=8006,
    title="Tessera chat",
    description=("Realtime rooms over Socket.IO, presence, history and staff assignment."),
    settings=Settings,
    tables=models.messaging,
    migrations=MIGRATIONS,
)


def create_app(settings: Settings) -> FastAPI:
    return kit.create_app(SERVICE, settings)


def create_app_from_env() -> FastAPI:
    return create_app(Settings())
