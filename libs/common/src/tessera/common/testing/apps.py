"""A service's app running in-process: its lifespan started (engine, broker, relay,
consumer), and an httpx client talking to it without a socket.

    async with running(create_app(settings)) as (app, client):
        response = await client.get("/auth/me", headers=tokens.bearer(user_id))
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import httpx
from fastapi import FastAPI

__all__ = ["running"]


@contextlib.asynccontextmanager
async def running(
    app: FastAPI, *, client: tuple[str, int] = ("127.0.0.1", 50000)
) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    """``httpx.ASGITransport`` does not run the lifespan itself: this does, around it."""
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, client=client)
        async with httpx.AsyncClient(transport=transport, base_url="http://service") as c:
            yield app, c
