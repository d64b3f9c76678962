"""Composition root of the auth service."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

from fastapi import FastAPI

from tessera.auth import api, models, service
from tessera.auth.events import PUBLISHED
from tessera.auth.keys import KeyRing
from tessera.auth.passwords import Passwords
from tessera.auth.settings import Settings
from tessera.common.http import create_service_app, instrument_app
from tessera.common.runtime import ServiceRuntime

__all__ = ["MIGRATIONS", "create_app", "create_app_from_env"]

MIGRATIONS = Path(__file__).resolve().parents[3] / "migrations"
PREFIX = "/auth"


def create_app(settings: Settings) -> FastAPI:
    keys = KeyRing(settings)
    runtime = ServiceRuntime(
        settings,
        tables=models.messaging,
        migrations_dir=MIGRATIONS,
        key_source=keys,
        publishes=PUBLISHED,
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with runtime.lifespan(app):
            await service.ensure_signing_key(runtime.uow(), keys)
            app.state.auth = service.AuthContext(
                settings=settings, passwords=Passwords(settings.argon2), keys=keys
            )
            yield

    app = create_service_app(
        settings=settings,
        prefix=PREFIX,
        title="Tessera auth",
        description="Users, organisations, tokens and keys. The only service that proves "
        "who a caller is; every other service verifies its JWTs through the JWKS.",
        lifespan=lifespan,
        readiness=runtime.readiness,
        asyncapi=runtime.asyncapi,
    )
    app.include_router(api.router)
    from tessera.common.telemetry import configure_telemetry

    instrument_app(app, configure_telemetry(settings.service_name), PREFIX)
    return app


def create_app_from_env() -> FastAPI:
    return create_app(Settings())
