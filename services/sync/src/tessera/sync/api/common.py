"""What the sync route modules share: the MISP caller (``Me``), CakePHP's named parameters,
and problem documentation."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials

from tessera.common.deps import Client, Runtime, UoW
from tessera.common.security import bearer_scheme
from tessera.sync.service import identity
from tessera.sync.settings import Settings
from tessera.sync.viewer import Viewer

__all__ = ["PROBLEM", "Me", "SyncSettings", "flag", "named_params"]

PROBLEM: dict[str, Any] = {"content": {"application/problem+json": {}}}
DENIED: dict[str, Any] = {"description": "no valid API key or token", **PROBLEM}


def flag(value: Any) -> bool:
    """A MISP flag as clients send it: ``1``, ``"1"``, ``true``, ``"true"``, ``"yes"``,
    ``"on"`` (any case); a list (CakePHP's named ``x[]:1``) is set when it holds anything."""
    if isinstance(value, list | tuple):
        return bool(value)
    return str(value).strip().lower() in ("1", "true", "yes", "on")


async def _settings(runtime: Runtime) -> Settings:
    settings = runtime.settings
    assert isinstance(settings, Settings)
    return settings


SyncSettings = Annotated[Settings, Depends(_settings)]


# Document the two ways in (each route lists them under ``security``); neither refuses by
# itself: ``_me`` reads the header and decides.
misp_key_scheme = APIKeyHeader(
    name="Authorization",
    scheme_name="misp_key",
    description=(
        "An auth API key (`POST /auth/api-keys`) as MISP clients send theirs: the header's "
        "whole value, no scheme (`X-MISP-AUTH: <key>` is read too)"
    ),
    auto_error=False,
)


async def _me(
    request: Request,
    uow: UoW,
    client: Client,
    settings: SyncSettings,
    _key: Annotated[str | None, Depends(misp_key_scheme)] = None,
    _bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)] = None,
) -> Viewer:
    """The caller: ``Authorization: <API key>`` (MISP's way), ``X-MISP-AUTH: <key>``, or
    ``Authorization: Bearer <access token>``."""
    header = request.headers.get("authorization") or request.headers.get("x-misp-auth") or ""
    header = header.strip()
    if not header:
        raise identity.AuthenticationFailed()
    scheme, _, rest = header.partition(" ")
    async with uow.driver() as conn:
        if scheme.lower() == "bearer" and rest.strip():
            return await identity.viewer_for_token(
                conn, rest.strip(), verifier=request.app.state.verifier, roles=settings.roles
            )
        return await identity.viewer_for_key(
            conn, header, client_ip=client.client_ip, roles=settings.roles
        )


Me = Annotated[Viewer, Depends(_me)]
"""The MISP caller (documented in OpenAPI as the ``misp_key`` scheme)."""


def named_params(rest: str | None) -> dict[str, Any]:
    """CakePHP's named parameters a MISP client appends to a path (``/noSightings:1``); a
    name ending in ``[]`` collects its values in a list (``/deleted[]:0/deleted[]:1``, as a
    pulling MISP asks for every attribute, deleted or not)."""
    found: dict[str, Any] = {}
    for part in (rest or "").split("/"):
        key, sep, value = part.partition(":")
        if not sep or not key:
            continue
        if key.endswith("[]") and len(key) > 2:
            listed = found.get(key[:-2])
            found[key[:-2]] = [*listed, value] if isinstance(listed, list) else [value]
        else:
            found[key] = value
    return found
