"""A dependency that is down or dropped a connection is a 503 the client may retry, not a 500.

Promises: when PostgreSQL has dropped the pool's connections (a restart, a failover), the
request that meets a dead connection answers 503 ``database_unavailable`` with
``Retry-After`` and the next one succeeds on a fresh connection; Redis unreachable is 503
``redis_unavailable``; a reading session costs no transaction and refuses to write.
"""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from fastapi import FastAPI
from redis.asyncio import Redis
from sqlalchemy import text

from tessera.common.http import create_service_app
from tessera.common.settings import ServiceSettings

if TYPE_CHECKING:
    from conftest import Probe


@pytest.fixture
async def app(probe: Probe) -> AsyncIterator[FastAPI]:
    app = create_service_app(
        settings=ServiceSettings(environment="test"), prefix="/probe", title="probe"
    )
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        nowhere = s.getsockname()[1]
    redis = Redis(host="127.0.0.1", port=nowhere, socket_connect_timeout=0.5)

    @app.get("/probe/rows")
    async def rows() -> dict[str, Any]:
        async with probe.uow().reading() as session:
            return {"n": await session.scalar(text("SELECT count(*) FROM probe_effects"))}

    @app.get("/probe/cache")
    async def cache() -> dict[str, Any]:
        return {"hit": await redis.get("k")}

    yield app
    await redis.aclose()


async def _get(app: FastAPI, path: str) -> httpx.Response:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://probe") as client:
        return await client.get(path)


async def test_connection_the_server_dropped_is_503_then_the_next_request_works(
    app: FastAPI, probe: Probe
) -> None:
    assert (await _get(app, "/probe/rows")).status_code == 200  # a pooled connection now
    async with probe.admin() as admin:  # PostgreSQL restarts, as far as the pool can tell
        await admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE usename = 'tessera_probe' AND datname = $1",
            probe.infra.database,
        )

    dropped = await _get(app, "/probe/rows")
    assert dropped.status_code == 503, dropped.text
    assert dropped.headers["content-type"] == "application/problem+json"
    assert dropped.headers["retry-after"] == "1"
    assert dropped.json()["code"] == "database_unavailable"
    assert (await _get(app, "/probe/rows")).status_code == 200


async def test_redis_unreachable_is_503_not_500(app: FastAPI) -> None:
    response = await _get(app, "/probe/cache")
    assert response.status_code == 503, response.text
    assert response.json()["code"] == "redis_unavailable"


async def test_reading_session_refuses_to_write_and_holds_no_transaction(probe: Probe) -> None:
    async with probe.uow().reading() as session:
        first = await session.scalar(text("SELECT txid_current()"))
        second = await session.scalar(text("SELECT txid_current()"))
        session.add(_effect(probe))
        with pytest.raises(RuntimeError, match="writes nothing"):
            await session.flush()
    assert first != second, "both reads ran in one transaction (BEGIN and ROLLBACK paid)"
    async with probe.uow() as uow:  # a unit of work is one transaction
        first = await uow.session.scalar(text("SELECT txid_current()"))
        assert await uow.session.scalar(text("SELECT txid_current()")) == first


def _effect(probe: Probe) -> Any:
    import uuid

    from sqlalchemy.orm import registry

    class Effect:
        pass

    mapper = registry()
    mapper.map_imperatively(Effect, probe.effects)
    effect = Effect()
    effect.event_id = uuid.uuid4()  # type: ignore[attr-defined]
    effect.n = 1  # type: ignore[attr-defined]
    return effect
