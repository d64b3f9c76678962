"""Composition root of the mailer service."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from tessera.common.messaging.rabbit import EventConsumer, Topology
from tessera.common.runtime import ServiceRuntime, service_app
from tessera.mailer import handlers, models, service
from tessera.mailer.drivers import ConsoleDriver, MailDriver, SmtpDriver
from tessera.mailer.rendering import Renderer
from tessera.mailer.settings import Settings

__all__ = ["MIGRATIONS", "create_app", "create_app_from_env"]

MIGRATIONS = Path(__file__).resolve().parents[3] / "migrations"
PREFIX = "/mail"


def create_app(settings: Settings, *, driver: MailDriver | None = None) -> FastAPI:
    mailer = service.Mailer(
        settings=settings,
        renderer=Renderer(default_locale=settings.default_locale),
        driver=driver
        or (SmtpDriver(settings.smtp) if settings.driver == "smtp" else ConsoleDriver()),
    )
    consumer = EventConsumer(Topology.for_service(settings.service_name, settings.broker))
    runtime: ServiceRuntime  # handlers reach it lazily, once it exists
    handlers.register_handlers(consumer, lambda: runtime.uow(), lambda: mailer)
    app, runtime = service_app(
        settings,
        prefix=PREFIX,
        title="Tessera mailer",
        description="Templated, localised mail from events; retries, dead letters, never twice.",
        tables=models.messaging,
        migrations_dir=MIGRATIONS,
        consumer=consumer,
    )
    return app


def create_app_from_env() -> FastAPI:
    return create_app(Settings())
