"""The floor of the request path: a bare FastAPI app reading one row with asyncpg.

What every authenticated route of a service does, minus everything Tessera adds (JWT and
deny-list checks, the unit of work, problem+json, request ids, logging, tracing, metrics).
``bench/request_path.py`` runs it under uvicorn beside the real auth service:

    FLOOR_DSN=postgresql://... uvicorn --factory bench.floor_app:create_app --port 9100
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
from fastapi import FastAPI, HTTPException

__all__ = ["create_app"]


def create_app() -> FastAPI:
    dsn = os.environ["FLOOR_DSN"]
    pool: asyncpg.Pool | None = None

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        nonlocal pool
        pool = await asyncpg.create_pool(dsn, min_size=4, max_size=10)
        try:
            yield
        finally:
            await pool.close()

    app = FastAPI(lifespan=lifespan, openapi_url=None, docs_url=None, redoc_url=None)

    @app.get("/floor/rows/{row_id}")
    async def row(row_id: uuid.UUID) -> dict[str, Any]:
        assert pool is not None
        found = await pool.fetchrow(
            "SELECT id, email, full_name, locale, created_at FROM floor_rows WHERE id = $1",
            row_id,
        )
        if found is None:
            raise HTTPException(404)
        return dict(found)

    return app
