"""Pytest plugin: real PostgreSQL, Redis and RabbitMQ for every test run; and the helpers
every service's tests share, in the modules of this package: ``broker`` (publish an
envelope, take what reached a queue or the DLQ, ``eventually``), ``apps`` (a service's app
running in-process), ``smtp`` (a real SMTP server), ``otlp`` (an OTLP/HTTP span receiver),
``tokens`` (access tokens for any user and roles).

URLs come from ``TEST_POSTGRES_URL``, ``TEST_REDIS_URL`` and ``TEST_RABBITMQ_URL``; where one
is not set and a Docker engine is available, testcontainers starts the server instead.
Each pytest process (each xdist worker) gets its own database and its own exchange and
queue names, so runs never step on each other or on what an earlier run left behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar, cast

import pytest
from pydantic import SecretStr
from sqlalchemy.engine import make_url

from tessera.common import suite
from tessera.common.settings import ServiceSettings

__all__ = ["Infra", "in_thread", "make_settings", "prepare_database", "run_sync"]

S = TypeVar("S", bound=ServiceSettings)
T = TypeVar("T")


def in_thread(fn: Callable[..., T], *args: Any) -> T:
    """Call ``fn`` in a fresh thread and return its result or raise its error.

    For code that runs its own event loop (``asyncio.run``, Alembic's env.py) when the
    caller may already be inside one.
    """
    result: dict[str, Any] = {}

    def target() -> None:
        try:
            result["value"] = fn(*args)
        except BaseException as exc:
            result["error"] = exc

    thread = threading.Thread(target=target)
    thread.start()
    thread.join()
    if "error" in result:
        raise result["error"]
    return cast(T, result.get("value"))


def run_sync(coro: Any) -> Any:
    """Run a coroutine to completion from sync code, even under a running loop."""
    return in_thread(asyncio.run, coro)


class Infra:
    """URLs of the real servers and the names private to this pytest process."""

    def __init__(self, postgres: str, redis: str, rabbitmq: str) -> None:
        self.postgres_admin = postgres
        self.redis = redis
        self.rabbitmq = rabbitmq
        self.run_id = uuid.uuid4().hex[:10]
        self.database = f"tessera_t_{self.run_id}"
        self.exchange = f"tessera.events.t{self.run_id}"
        self.unrouted = f"tessera.unrouted.t{self.run_id}"
        self.queue_prefix = f"t{self.run_id}."
        self.redis_prefix = f"t{self.run_id}:"

    def database_url(self, service: str) -> str:
        url = make_url(self.postgres_admin)
        return url.set(
            drivername="postgresql+asyncpg",
            username=f"tessera_{service}",
            password=f"tessera_{service}_dev",
            database=self.database,
        ).render_as_string(hide_password=False)


def make_settings(cls: type[S], infra: Infra, **overrides: Any) -> S:
    """Settings of one service pointed at this run's database, broker names and Redis."""
    name = cls.service_name
    values: dict[str, Any] = {
        "environment": "test",
        "log_format": "console",
        "admin_database_url": SecretStr(infra.postgres_admin),
        "database": {"url": SecretStr(infra.database_url(name)), "pool_size": 5},
        "broker": {
            "url": SecretStr(infra.rabbitmq),
            "exchange": infra.exchange,
            "unrouted": infra.unrouted,
            "queue_prefix": infra.queue_prefix,
            "retry_delays_ms": [200, 400],
            "outbox_poll_interval_s": 0.2,
        },
        "redis": {"url": SecretStr(infra.redis), "key_prefix": infra.redis_prefix},
    }
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(values.get(key), dict):
            values[key] = {**values[key], **value}
        else:
            values[key] = value
    return cls(**values)


def prepare_database(settings: ServiceSettings, migrations_dir: Path) -> None:
    """Bootstrap the role and schema of one service in this run's database, then migrate."""
    from tessera.common.bootstrap import bootstrap_database
    from tessera.common.migrations import upgrade

    run_sync(bootstrap_database(settings))
    in_thread(upgrade, migrations_dir, settings)


def _from_env_or_container(var: str, start: Any) -> tuple[str, Any]:
    url = os.environ.get(var)
    if url:
        return url, None
    try:
        return start()
    except Exception as exc:
        raise pytest.UsageError(
            f"{var} is not set and no Docker engine could start a container "
            f"({type(exc).__name__}); set {var} to a running server (see README)"
        ) from exc


def _start_postgres() -> tuple[str, Any]:
    from testcontainers.postgres import PostgresContainer

    c = PostgresContainer("postgres:16-alpine").start()
    return c.get_connection_url().replace("+psycopg2", ""), c


def _start_redis() -> tuple[str, Any]:
    from testcontainers.redis import RedisContainer

    c = RedisContainer("redis:7-alpine").start()
    return f"redis://{c.get_container_host_ip()}:{c.get_exposed_port(6379)}/0", c


def _start_rabbitmq() -> tuple[str, Any]:
    from testcontainers.rabbitmq import RabbitMqContainer

    c = RabbitMqContainer("rabbitmq:3.13-management").start()
    return f"amqp://guest:guest@{c.get_container_host_ip()}:{c.get_exposed_port(5672)}/", c


async def _drop_broker_names(infra: Infra) -> None:
    """Delete this run's exchange and queues (quorum queues outlive their consumers)."""
    import aio_pika
    import aiormq

    with contextlib.suppress(Exception):
        connection = await aio_pika.connect(infra.rabbitmq)
        async with connection:
            channel = await connection.channel()
            for exchange in (infra.exchange, infra.unrouted):
                with contextlib.suppress(aiormq.exceptions.AMQPError):
                    await channel.exchange_delete(exchange)
            for service in (*suite.names(), "probe"):
                base = f"{infra.queue_prefix}{service}.events"
                for name in [infra.unrouted, base, f"{base}.quarantine", f"{base}.dlq"] + [
                    f"{base}.retry.{d}ms" for d in (200, 400, 1000, 5000, 30000)
                ]:
                    channel = channel if not channel.is_closed else await connection.channel()
                    with contextlib.suppress(aiormq.exceptions.AMQPError):
                        await channel.queue_delete(name)


async def _create_database(infra: Infra) -> None:
    import asyncpg

    conn = await asyncpg.connect(infra.postgres_admin)
    try:
        await conn.execute(f'CREATE DATABASE "{infra.database}"')
    finally:
        await conn.close()


async def _drop_database(infra: Infra) -> None:
    import asyncpg

    conn = await asyncpg.connect(infra.postgres_admin)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{infra.database}" WITH (FORCE)')
    finally:
        await conn.close()


@pytest.fixture(scope="session")
def infra() -> Iterator[Infra]:
    """The real servers, and names private to this pytest process."""
    containers = []
    pg, c1 = _from_env_or_container("TEST_POSTGRES_URL", _start_postgres)
    redis, c2 = _from_env_or_container("TEST_REDIS_URL", _start_redis)
    amqp, c3 = _from_env_or_container("TEST_RABBITMQ_URL", _start_rabbitmq)
    containers = [c for c in (c1, c2, c3) if c is not None]
    infra = Infra(pg, redis, amqp)
    run_sync(_create_database(infra))
    try:
        yield infra
    finally:
        run_sync(_drop_broker_names(infra))
        run_sync(_drop_database(infra))
        for container in containers:
            container.stop()
