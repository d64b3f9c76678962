"""Composition root of the mailer service: its description, from which the kit makes the
app, the CLI, the Alembic environment and the AsyncAPI document."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

from fastapi import FastAPI

from tessera.common import kit
from tessera.common.runtime import ServiceRuntime
from tessera.common.security import KeySource
from tessera.mailer import api, handlers, models, service
from tessera.mailer.drivers import ConsoleDriver, FileDriver, MailDriver, SmtpDriver
from tessera.mailer.events import DeliveryFailed
from tessera.mailer.rendering import Renderer
from tessera.mailer.settings import Settings

__all__ = ["MIGRATIONS", "SERVICE", "create_app", "create_app_from_env"]

MIGRATIONS = Path(__file__).resolve().parents[3] / "migrations"


@contextlib.asynccontextmanager
async def _closing_the_driver(app: FastAPI, runtime: ServiceRuntime) -> AsyncIterator[None]:
    """The SMTP connection is kept open between emails: QUIT at shutdown."""
    try:
        yield
    finally:
        await runtime.get(service.Mailer).driver.close()


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
    publishes=[DeliveryFailed],
    routers=[api.router, api.templates],
    lifespan=_closing_the_driver,
)


def create_app(
    settings: Settings, *, driver: MailDriver | None = None, key_source: KeySource | None = None
) -> FastAPI:
    """The mailer; ``driver`` replaces the one its settings name and ``key_source`` auth's
    JWKS (tests pass their own)."""
    mailer = service.Mailer(
        settings=settings,
        renderer=Renderer(default_locale=settings.default_locale),
        driver=driver or _driver(settings),
    )
    return kit.create_app(SERVICE, settings, resources=[mailer], key_source=key_source)


def _driver(settings: Settings) -> MailDriver:
    if settings.driver == "smtp":
        return SmtpDriver(settings.smtp)
    if settings.driver == "file":
        return FileDriver(settings.file_directory)
    return ConsoleDriver()


def create_app_from_env() -> FastAPI:
    return create_app(Settings())
