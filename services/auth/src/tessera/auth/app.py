"""Composition root of the auth service: its description, from which the kit makes the
app, the CLI, the Alembic environment and the AsyncAPI document."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

from fastapi import FastAPI

from tessera.auth import api, commands, models
from tessera.auth.abuse import Guard
from tessera.auth.events import PUBLISHED
from tessera.auth.keys import KeyRing
from tessera.auth.passwords import Passwords
from tessera.auth.service.context import AuthContext
from tessera.auth.service.tokens import ensure_signing_key
from tessera.auth.settings import Settings
from tessera.common import kit
from tessera.common.runtime import ServiceRuntime
from tessera.common.settings import ServiceSettings

__all__ = ["MIGRATIONS", "SERVICE", "create_app", "create_app_from_env"]

MIGRATIONS = Path(__file__).resolve().parents[3] / "migrations"


def _auth_settings(settings: ServiceSettings) -> Settings:
    if not isinstance(settings, Settings):
        raise TypeError(f"auth takes its own Settings, not {type(settings).__name__}")
    return settings


def key_ring(settings: ServiceSettings) -> KeyRing:
    """Auth signs with its keys and verifies its own tokens with them (no JWKS fetch)."""
    return KeyRing(_auth_settings(settings))


@contextlib.asynccontextmanager
async def signing_keys(app: FastAPI, runtime: ServiceRuntime) -> AsyncIterator[None]:
    """Ensure a signing key, then provide the ``AuthContext`` the routes use; the keys are
    reread from the database while serving, so a ``keys rotate`` elsewhere needs no restart."""
    settings = _auth_settings(runtime.settings)
    keys = runtime.get(KeyRing)
    await ensure_signing_key(runtime.uow(), keys)
    keys.bind(runtime.sessions)
    runtime.provide(
        AuthContext(
            settings=settings,
            passwords=Passwords(settings.argon2),
            keys=keys,
            guard=Guard(runtime.redis, settings),
        )
    )
    async with keys.reloading():
        yield


SERVICE = kit.ServiceSpec(
    name="auth",
    prefix="/auth",
    port=8001,
    title="Tessera auth",
    description="Users, organisations, tokens and keys. The only service that proves "
    "who a caller is; every other service verifies its JWTs through the JWKS.",
    settings=Settings,
    tables=models.messaging,
    migrations=MIGRATIONS,
    publishes=PUBLISHED,
    routers=api.routers,
    commands=commands.add_commands,
    lifespan=signing_keys,
    key_source=key_ring,
)


def create_app(settings: Settings) -> FastAPI:
    return kit.create_app(SERVICE, settings)


def create_app_from_env() -> FastAPI:
    return create_app(Settings())
