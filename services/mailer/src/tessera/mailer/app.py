"""Composition root of the mailer service: its description, from which the kit makes the
app, the CLI, the Alembic environment and the AsyncAPI document."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from tessera.common import kit
from tessera.mailer import handlers, models, service
from tessera.mailer.drivers import ConsoleDriver, MailDriver, SmtpDriver
from tessera.mailer.rendering import Renderer
from tessera.mailer.settings import Settings

__all__ = ["MIGRATIONS", "SERVICE", "create_app", "create_app_from_env"]

MIGRATIONS = Path(__file__).resolve().parents[3] / "migrations"

SERVICE = kit.ServiceSpec(
    name="mailer",
    prefix="/mail",
    port=8004,
    title="Tessera mailer",
    description="Templated, localised mail from events; retries, dead letters, never twice.",
    settings=Settings,
    tables=models.messaging,
    migrations=MIGRATIONS,
    consumer=handlers.consumer,
)


def create_app(settings: Settings, *, driver: MailDriver | None = None) -> FastAPI:
    """The mailer; ``driver`` replaces the one its settings name (tests pass their own)."""
    mailer = service.Mailer(
        settings=settings,
        renderer=Renderer(default_locale=settings.default_locale),
        driver=driver
        or (SmtpDriver(settings.smtp) if settings.driver == "smtp" else ConsoleDriver()),
    )
    return kit.create_app(SERVICE, settings, resources=[mailer])


def create_app_from_env() -> FastAPI:
    return create_app(Settings())
