"""Composition root of the sync service: its description, from which the kit makes the
app, the CLI, the Alembic environment and the AsyncAPI document."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path

import structlog
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from tessera.common import kit
from tessera.common.http import problem_response
from tessera.common.problems import Problem
from tessera.common.runtime import ServiceRuntime
from tessera.common.security import KeySource
from tessera.sync import commands, handlers, models
from tessera.sync.api import ROUTERS
from tessera.sync.crypto import KeyBox
from tessera.sync.events import PUBLISHED
from tessera.sync.service import feeds
from tessera.sync.service.protection import Keyring
from tessera.sync.settings import Settings

__all__ = ["MIGRATIONS", "SERVICE", "create_app", "create_app_from_env"]

MIGRATIONS = Path(__file__).resolve().parents[3] / "migrations"

log = structlog.stdlib.get_logger(__name__)


@contextlib.asynccontextmanager
async def _feed_schedule(app: FastAPI, runtime: ServiceRuntime) -> AsyncIterator[None]:
    """Every ``SYNC__FEEDS_CHECK_EVERY_S``, start a fetch of each enabled feed whose
    ``fetch_every_s`` has passed (every replica does; a feed is claimed by one of them)."""
    settings = runtime.settings
    assert isinstance(settings, Settings)
    every = settings.feeds_check_every_s

    async def loop() -> None:
        while True:
            await asyncio.sleep(every)
            try:
                await feeds.start_due_fetches(runtime.uow())
            except Exception:  # the database away for a while: try again next time
                log.exception("feeds_schedule_failed")

    task = asyncio.create_task(loop()) if every else None
    try:
        yield
    finally:
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


SERVICE = kit.ServiceSpec(
    name="sync",
    prefix="/sync",
    port=8005,
    title="Tessera sync",
    description=(
        "A MISP-compatible threat-intelligence sharing service: events, attributes, objects, "
        'tags and sightings under MISP\'s own routes (`PyMISP("http://host/sync/", key)` works), '
        "pull and push between servers, feeds."
    ),
    settings=Settings,
    tables=models.messaging,
    migrations=MIGRATIONS,
    publishes=PUBLISHED,
    consumer=handlers.consumer,
    routers=ROUTERS,
    lifespan=_feed_schedule,
    commands=commands.add_commands,
)


def create_app(settings: Settings, *, key_source: KeySource | None = None) -> FastAPI:
    """The sync service; ``key_source`` replaces auth's JWKS (tests pass their own)."""
    keys = KeyBox(settings.server_key.get_secret_value())
    signing_key = settings.signing_key.get_secret_value() if settings.signing_key else None
    ring = Keyring.of(keys, signing_key)
    app = kit.create_app(SERVICE, settings, key_source=key_source, resources=[keys, ring, settings])
    app.add_exception_handler(Problem, _misp_problem)
    return app


def create_app_from_env() -> FastAPI:
    return create_app(Settings())


async def _misp_problem(request: Request, exc: Problem) -> JSONResponse:
    """The kernel's problem+json, with the ``name``, ``message`` and ``url`` MISP's error
    answers have (what MISP clients show: PyMISP returns the body as ``errors``)."""
    response = problem_response(
        request,
        status=exc.status,
        code=exc.code,
        title=exc.title,
        detail=exc.detail,
        errors=exc.errors,
        headers=exc.headers,
    )
    body = json.loads(response.body)
    body |= {
        "name": exc.title,
        "message": exc.detail or exc.title,
        "url": request.url.path.removeprefix("/sync"),
    }
    return JSONResponse(body, status_code=exc.status, media_type=response.media_type,
                        headers=dict(exc.headers))  # fmt: skip
