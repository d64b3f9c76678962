"""Auth's HTTP routes: they translate HTTP to use cases (``tessera.auth.service``) and hold
no SQL. One module per area; ``routers`` is what the service's spec includes."""

from __future__ import annotations

from fastapi import APIRouter

from tessera.auth.api import accounts, apikeys, audit, keys, organisations, tokens

__all__ = ["routers"]

routers: list[APIRouter] = [
    accounts.router,
    tokens.router,
    keys.router,
    organisations.router,
    apikeys.router,
    audit.router,
]
