"""The service kit: one declarative description of a service, and everything made from it.

A service is a :class:`ServiceSpec` plus its own modules (settings, models, use cases,
routes, handlers, events)::

    SERVICE = ServiceSpec(
        name="mailer",
        prefix="/mail",
        port=8004,
        title="Tessera mailer",
        description="Templated, localised mail from events.",
        settings=Settings,
        tables=models.messaging,
        migrations=MIGRATIONS,
        consumer=handlers.consumer,
        routers=[api.router],
    )

From it the kit makes the app (:func:`create_app`: the runtime with its engine, broker,
relay and consumer, the HTTP conventions, the routers, the exchange always declared), the
command line (:func:`create_cli`: ``db``, ``dlq``, ``outbox``, ``serve``, ``healthcheck`` and the
service's own commands), the Alembic environment (:func:`run_migrations`) and the AsyncAPI
document (served by the app, written by ``make contracts``).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import typer
from fastapi import APIRouter, FastAPI

from tessera.common.consumers import Consumer
from tessera.common.http import create_service_app, instrument_app
from tessera.common.messaging.envelope import Event
from tessera.common.runtime import ExtraLifespan, MessagingTables, ServiceRuntime
from tessera.common.security import KeySource
from tessera.common.settings import ServiceSettings
from tessera.common.telemetry import configure_telemetry

__all__ = ["ServiceSpec", "create_app", "create_cli", "run_migrations"]


@dataclass(frozen=True)
class ServiceSpec:
    """What makes one service: its names, its settings, its tables, its events, its routes."""

    name: str
    """schema, login role, queue names, CLI (``tessera-<name>``) and ``service.name``"""
    prefix: str
    """every route lives under it (``/mail``), behind the gateway and on the service's port"""
    port: int
    title: str
    description: str
    settings: type[ServiceSettings]
    tables: MessagingTables
    """the service's outbox and inbox, and through them its metadata (all its tables)"""
    migrations: Path
    publishes: Sequence[type[Event]] = ()
    consumer: Consumer | None = None
    routers: Sequence[APIRouter] = ()
    commands: Callable[[typer.Typer], None] | None = None
    """adds the service's own commands to its CLI"""
    lifespan: ExtraLifespan | None = None
    """runs inside the runtime's (database, broker and relay up) for what the service sets up
    before serving; it may ``runtime.provide(...)`` objects its routes and handlers use"""
    key_source: Callable[[ServiceSettings], KeySource] | None = None
    """where access tokens' keys come from, when not auth's JWKS (auth itself); the object
    is provided to the runtime too"""
    version: str = "0.1.0"

    def __post_init__(self) -> None:
        if self.settings.service_name != self.name:
            raise ValueError(
                f"{self.settings.__name__}.service_name is {self.settings.service_name!r}, "
                f"the service is {self.name!r}"
            )
        if not self.prefix.startswith("/") or self.prefix.endswith("/"):
            raise ValueError(f"prefix {self.prefix!r}: one leading slash, none trailing")

    @property
    def app_factory(self) -> str:
        return f"tessera.{self.name}.app:create_app_from_env"


def create_app(
    spec: ServiceSpec,
    settings: ServiceSettings,
    *,
    resources: Sequence[object] = (),
    key_source: KeySource | None = None,
    run_relay: bool | None = None,
) -> FastAPI:
    """The service's app; nothing connects until its lifespan starts.

    ``resources`` are provided to the runtime (reached with ``deps.resource`` and
    ``uow.get``); ``key_source`` replaces where token keys come from (tests pass their own).
    """
    if not isinstance(settings, spec.settings):
        raise TypeError(
            f"{spec.name} takes {spec.settings.__name__}, not {type(settings).__name__}"
        )
    provided = list(resources)
    if key_source is None and spec.key_source is not None:
        key_source = spec.key_source(settings)
        provided.append(key_source)
    runtime = ServiceRuntime(
        settings,
        tables=spec.tables,
        migrations_dir=spec.migrations,
        consumer=spec.consumer,
        publishes=spec.publishes,
        key_source=key_source,
        run_relay=run_relay,
        resources=provided,
    )
    extra = spec.lifespan

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with runtime.lifespan(app):
            if extra is None:
                yield
            else:
                async with extra(app, runtime):
                    yield

    app = create_service_app(
        settings=settings,
        prefix=spec.prefix,
        title=spec.title,
        description=spec.description,
        version=spec.version,
        lifespan=lifespan,
        readiness=runtime.readiness,
        asyncapi=runtime.asyncapi,
        metrics=runtime.refresh_metrics,
    )
    app.state.runtime = runtime  # before the lifespan too: tests and tools may read it
    for router in spec.routers:
        app.include_router(router)
    instrument_app(app, configure_telemetry(settings.service_name), spec.prefix)
    return app


def create_cli(spec: ServiceSpec) -> typer.Typer:
    """``tessera-<name>``: the commands every service has, then the service's own."""
    from tessera.common.cli import service_cli

    cli = service_cli(
        spec.settings,
        migrations_dir=spec.migrations,
        app_factory=spec.app_factory,
        default_port=spec.port,
        prefix=spec.prefix,
    )
    if spec.commands is not None:
        spec.commands(cli)
    return cli


def run_migrations(spec: ServiceSpec) -> None:
    """The body of the service's ``migrations/env.py``."""
    from tessera.common.migrations import run_env

    run_env(metadata=spec.tables.metadata, settings_cls=spec.settings)
