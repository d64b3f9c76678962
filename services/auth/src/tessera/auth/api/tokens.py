"""Auth's HTTP routes for logging in, tokens and sessions: translate HTTP to use cases; no
SQL here."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Response

from tessera.auth.api.common import PROBLEM, ClientInfo, Ctx
from tessera.auth.schemas import LoginIn, LogoutIn, RefreshIn, SessionsPage, TokenOut
from tessera.auth.service import tokens
from tessera.common.deps import Caller, Revoker, UoW
from tessera.common.pagination import MAX_OFFSET

__all__ = ["router"]

UNAUTHORIZED: dict[int | str, dict[str, Any]] = {
    401: {"description": "missing, invalid or revoked token", **PROBLEM}
}

router = APIRouter(prefix="/auth")


async def _policy(ctx: Ctx, revoker: Revoker) -> tokens.TokenPolicy:
    return tokens.TokenPolicy(
        keys=ctx.keys,
        revocations=revoker,
        access_token_ttl_s=ctx.settings.access_token_ttl_s,
    )


Policy = Annotated[tokens.TokenPolicy, Depends(_policy)]


@router.post(
    "/login",
    tags=["auth"],
    summary="Exchange email and password for an access and a refresh token",
    responses={
        401: {"description": "wrong email or password", **PROBLEM},
        429: {"description": "rate limit or account lockout; see Retry-After", **PROBLEM},
    },
)
async def login(body: LoginIn, uow: UoW, ctx: Ctx, client: ClientInfo) -> TokenOut:
    return await tokens.login(uow, ctx, body, client)


@router.post(
    "/token/refresh",
    tags=["tokens"],
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
    tags=["tokens"],
    summary="End the caller's session; its access and refresh tokens stop working",
    responses=UNAUTHORIZED,
)
async def logout(
    uow: UoW, policy: Policy, caller: Caller, body: LogoutIn | None = None
) -> Response:
    await tokens.logout(uow, policy, caller, refresh_token=body.refresh_token if body else None)
    return Response(status_code=204)


@router.get(
    "/sessions",
    tags=["tokens"],
    summary="The caller's sessions (logins), newest first",
    responses=UNAUTHORIZED,
)
async def sessions(
    uow: UoW,
    caller: Caller,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> SessionsPage:
    return await tokens.list_sessions(uow, caller, limit=limit, offset=offset)


@router.delete(
    "/sessions/{session_id}",
    status_code=204,
    tags=["tokens"],
    summary="Revoke one of the caller's sessions",
    responses={**UNAUTHORIZED, 404: {"description": "no such session of the caller", **PROBLEM}},
)
async def delete_session(
    session_id: uuid.UUID, uow: UoW, policy: Policy, caller: Caller
) -> Response:
    await tokens.revoke_session(uow, policy, caller, session_id)
    return Response(status_code=204)
