"""Auth's HTTP routes for tokens: translate HTTP to use cases; no SQL here."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response

from tessera.auth import tokens
from tessera.auth.schemas import LogoutIn, RefreshIn, SessionsPage, TokenOut
from tessera.common.db import UnitOfWork
from tessera.common.security import CurrentPrincipal

__all__ = ["router"]

PROBLEM: dict[str, Any] = {"content": {"application/problem+json": {}}}
UNAUTHORIZED: dict[int | str, dict[str, Any]] = {
    401: {"description": "missing, invalid or revoked token", **PROBLEM}
}

router = APIRouter(prefix="/auth", tags=["tokens"])


def _uow(request: Request) -> UnitOfWork:
    return request.app.state.runtime.uow()


def _policy(request: Request) -> tokens.TokenPolicy:
    ctx = request.app.state.auth
    return tokens.TokenPolicy(
        keys=ctx.keys,
        revocations=request.app.state.runtime.revocations,
        access_token_ttl_s=ctx.settings.access_token_ttl_s,
    )


UoW = Annotated[UnitOfWork, Depends(_uow)]
Policy = Annotated[tokens.TokenPolicy, Depends(_policy)]


@router.post(
    "/token/refresh",
    summary="Rotate a refresh token: a new access token and a new refresh token",
    description="Each refresh token works once. Presenting one that was already used "
    "revokes its whole session (every token issued from the same login).",
    responses={
        401: {"description": "unknown, expired, revoked or reused refresh token", **PROBLEM}
    },
)
async def refresh(body: RefreshIn, uow: UoW, policy: Policy) -> TokenOut:
    return await tokens.refresh(uow, policy, body.refresh_token)


@router.post(
    "/logout",
    status_code=204,
    summary="End the caller's session; its access and refresh tokens stop working",
    responses=UNAUTHORIZED,
)
async def logout(
    uow: UoW, policy: Policy, caller: CurrentPrincipal, body: LogoutIn | None = None
) -> Response:
    await tokens.logout(uow, policy, caller, refresh_token=body.refresh_token if body else None)
    return Response(status_code=204)


@router.get(
    "/sessions",
    summary="The caller's sessions (logins), newest first",
    responses=UNAUTHORIZED,
)
async def sessions(
    uow: UoW,
    caller: CurrentPrincipal,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> SessionsPage:
    return await tokens.list_sessions(uow, caller, limit=limit, offset=offset)


@router.delete(
    "/sessions/{session_id}",
    status_code=204,
    summary="Revoke one of the caller's sessions",
    responses={**UNAUTHORIZED, 404: {"description": "no such session of the caller", **PROBLEM}},
)
async def delete_session(
    session_id: uuid.UUID, uow: UoW, policy: Policy, caller: CurrentPrincipal
) -> Response:
    await tokens.revoke_session(uow, policy, caller, session_id)
    return Response(status_code=204)
