"""Auth's HTTP routes: translate HTTP to use cases; no SQL here."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response

from tessera.auth import service
from tessera.auth.models import User
from tessera.auth.schemas import LoginIn, RegisterIn, TokenOut, UserPublic
from tessera.common.db import UnitOfWork
from tessera.common.security import CurrentPrincipal

__all__ = ["router"]

PROBLEM: dict[str, Any] = {"content": {"application/problem+json": {}}}

router = APIRouter(prefix="/auth", tags=["auth"])


def _uow(request: Request) -> UnitOfWork:
    return request.app.state.runtime.uow()


def _ctx(request: Request) -> service.AuthContext:
    return request.app.state.auth


UoW = Annotated[UnitOfWork, Depends(_uow)]
Ctx = Annotated[service.AuthContext, Depends(_ctx)]


def _client(request: Request) -> service.ClientInfo:
    """The caller's address (uvicorn resolves X-Forwarded-For from the gateway) and agent."""
    return service.ClientInfo(
        ip_address=request.client.host if request.client else None,
        user_agent=request.headers.get("user-agent"),
    )


def _public(user: User) -> UserPublic:
    return UserPublic(
        id=user.id,
        email=user.email,
        full_name=user.full_name,
        locale=user.locale,
        email_verified=user.email_verified_at is not None,
        created_at=user.created_at,
    )


@router.post(
    "/register",
    status_code=201,
    summary="Create an account; a verification email follows",
    responses={
        409: {"description": "email already registered", **PROBLEM},
        422: {"description": "invalid input or weak password", **PROBLEM},
    },
)
async def register(
    body: RegisterIn, uow: UoW, ctx: Ctx, request: Request, response: Response
) -> UserPublic:
    user = await service.register(uow, ctx, body, _client(request))
    response.headers["Location"] = "/auth/me"
    return _public(user)


@router.post(
    "/login",
    summary="Exchange email and password for an access and a refresh token",
    responses={
        401: {"description": "wrong email or password", **PROBLEM},
        429: {"description": "rate limit or account lockout; see Retry-After", **PROBLEM},
    },
)
async def login(body: LoginIn, uow: UoW, ctx: Ctx, request: Request) -> TokenOut:
    return await service.login(uow, ctx, body, _client(request))


@router.get(
    "/me",
    summary="The calling user's account",
    responses={401: {"description": "missing or invalid token", **PROBLEM}},
)
async def me(uow: UoW, caller: CurrentPrincipal) -> UserPublic:
    return _public(await service.current_user(uow, caller))


@router.get(
    "/.well-known/jwks.json",
    summary="Public keys verifying access tokens (JWKS)",
    response_model=None,
)
async def jwks(ctx: Ctx, response: Response) -> dict[str, object]:
    response.headers["Cache-Control"] = "public, max-age=300"
    # a verifier meeting an unknown kid refetches this: show a key rotated in by another
    # process now, not at this process's next periodic reload (bounded by min_reload_s)
    await ctx.keys.reload(force=False)
    return ctx.keys.jwks
