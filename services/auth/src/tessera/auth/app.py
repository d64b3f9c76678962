"""Composition root of the auth service."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

from fastapi import FastAPI

from tessera.auth import (
    api,
    api_accounts,
    api_audit,
    api_organisations,
    api_tokens,
    models,
    service,
)
from tessera.auth.abuse import Guard
from tessera.auth.events import PUBLISHED
from tessera.auth.keys import KeyRing
from tessera.auth.passwords import Passwords
from tessera.auth.settings import Settings
from tessera.common.runtime import ServiceRuntime, service_app

__all__ = ["MIGRATIONS", "create_app", "create_app_from_env"]

MIGRATIONS = Path(__file__).resolve().parents[3] / "migrations"
PREFIX = "/auth"


def create_app(settings: Settings) -> FastAPI:
    keys = KeyRing(settings)

    @contextlib.asynccontextmanager
    async def signing_keys(app: FastAPI, runtime: ServiceRuntime) -> AsyncIterator[None]:
        await service.ensure_signing_key(runtime.uow(), keys)
        keys.bind(runtime.sessions)  # reloads: a `keys rotate` elsewhere needs no restart
        app.state.auth = service.AuthContext(
            settings=settings,
            passwords=Passwords(settings.argon2),
            keys=keys,
            guard=Guard(runtime.redis, settings),
        )
        async with keys.reloading():
            yield

    app, _ = service_app(
        settings,
        prefix=PREFIX,
        title="Tessera auth",
        description="Users, organisations, tokens and keys. The only service that proves "
        "who a caller is; every other service verifies its JWTs through the JWKS.",
        tables=models.messaging,
        migrations_dir=MIGRATIONS,
        publishes=PUBLISHED,
        key_source=keys,
        lifespan=signing_keys,
    )
    app.include_router(api.router)
    app.include_router(api_tokens.router)
    app.include_router(api_accounts.router)
    app.include_router(api_organisations.router)
    app.include_router(api_audit.router)
    return app


def create_app_from_env() -> FastAPI:
    return create_app(Settings())
