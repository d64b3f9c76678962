"""Composition root of the chat service."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from tessera.chat import models
from tessera.chat.settings import Settings
from tessera.common.runtime import service_app

__all__ = ["MIGRATIONS", "create_app", "create_app_from_env"]

MIGRATIONS = Path(__file__).resolve().parents[3] / "migrations"
PREFIX = "/chat"


def create_app(settings: Settings) -> FastAPI:
    app, _ = service_app(
        settings,
        prefix=PREFIX,
        title="Tessera chat",
        description="Realtime rooms over Socket.IO, presence, history and staff assignment.",
        tables=models.messaging,
        migrations_dir=MIGRATIONS,
    )
    return app


def create_app_from_env() -> FastAPI:
    return create_app(Settings())
