"""Auth's HTTP routes for accounts: translate HTTP to use cases; no SQL here.

"Mail me a link" requests (verification resend, recovery, login link) answer 202 before any
lookup: the work runs as a background task after the response is sent, so neither the
answer nor its timing tells whether the address has an account.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter, BackgroundTasks, Response

from tessera.auth.api.common import PROBLEM, RATE_LIMITED, ClientInfo, Ctx, user_public
from tessera.auth.schemas import (
    AccountDeleteIn,
    EmailIn,
    PasswordChangeIn,
    PasswordResetIn,
    RegisterIn,
    TokenIn,
    TokenOut,
    UserPublic,
    UserUpdate,
)
from tessera.auth.service import accounts
from tessera.auth.service.context import AuthContext
from tessera.common.db import UnitOfWork
from tessera.common.deps import Caller, Revoker, UoW

__all__ = ["router"]

router = APIRouter(prefix="/auth")

ACCEPTED = "Accepted: if the address has an account, an email is on its way"
INVALID_TOKEN: dict[str, Any] = {"description": "invalid, expired or used token", **PROBLEM}
WEAK: dict[str, Any] = {"description": "invalid input or weak password", **PROBLEM}
UNAUTHORIZED: dict[str, Any] = {"description": "missing/invalid token or password", **PROBLEM}


@router.post(
    "/register",
    status_code=201,
    tags=["auth"],
    summary="Create an account; a verification email follows",
    responses={
        409: {"description": "email already registered", **PROBLEM},
        422: {"description": "invalid input or weak password", **PROBLEM},
        429: RATE_LIMITED,
    },
)
async def register(
    body: RegisterIn, uow: UoW, ctx: Ctx, client: ClientInfo, response: Response
) -> UserPublic:
    user = await accounts.register(uow, ctx, body, client)
    response.headers["Location"] = "/auth/me"
    return user_public(user)


@router.get(
    "/me",
    tags=["auth"],
    summary="The calling user's account",
    responses={401: {"description": "missing or invalid token", **PROBLEM}},
)
async def me(uow: UoW, caller: Caller) -> UserPublic:
    return user_public(await accounts.current_user(uow, caller))


@router.post(
    "/verify",
    tags=["accounts"],
    summary="Confirm the email address with the token from the verification mail",
    responses={400: INVALID_TOKEN},
)
async def verify(body: TokenIn, uow: UoW) -> UserPublic:
    return user_public(await accounts.verify_email(uow, body.token))


async def _accept(
    client: ClientInfo,
    background: BackgroundTasks,
    ctx: AuthContext,
    action: str,
    work: Callable[[UnitOfWork, AuthContext, str], Awaitable[object]],
    uow: UnitOfWork,
    email: str,
) -> dict[str, str]:
    """Count the attempt (per address and account), answer 202 and do ``work`` afterwards:
    the answer and its timing are the same whether the address exists or not."""
    if ctx.guard is not None:
        await ctx.guard.limit(action, ip=client.ip_address, email=email)
    background.add_task(work, uow, ctx, email)
    return {"detail": ACCEPTED}


@router.post(
    "/verify/resend",
    status_code=202,
    tags=["accounts"],
    summary="Mail a new verification link (same answer whether the address exists or not)",
    responses={429: RATE_LIMITED},
)
async def resend_verification(
    body: EmailIn, uow: UoW, ctx: Ctx, background: BackgroundTasks, client: ClientInfo
) -> dict[str, str]:
    return await _accept(
        client, background, ctx, "verify_resend", accounts.resend_verification, uow, body.email
    )


@router.post(
    "/password/recover",
    status_code=202,
    tags=["accounts"],
    summary="Mail a password reset link (same answer whether the address exists or not)",
    responses={429: RATE_LIMITED},
)
async def recover_password(
    body: EmailIn, uow: UoW, ctx: Ctx, background: BackgroundTasks, client: ClientInfo
) -> dict[str, str]:
    return await _accept(
        client, background, ctx, "recover", accounts.request_password_reset, uow, body.email
    )


@router.post(
    "/password/reset",
    status_code=204,
    tags=["accounts"],
    summary="Set a new password with the token from the reset mail; ends every session",
    responses={400: INVALID_TOKEN, 422: WEAK},
)
async def reset_password(body: PasswordResetIn, uow: UoW, ctx: Ctx, revoker: Revoker) -> Response:
    await accounts.reset_password(uow, ctx, revoker, body.token, body.new_password)
    return Response(status_code=204)


@router.post(
    "/password/change",
    status_code=204,
    tags=["accounts"],
    summary="Change the caller's password; ends every other session",
    responses={401: UNAUTHORIZED, 422: WEAK},
)
async def change_password(
    body: PasswordChangeIn, uow: UoW, ctx: Ctx, revoker: Revoker, caller: Caller
) -> Response:
    await accounts.change_password(
        uow, ctx, revoker, caller, body.current_password, body.new_password
    )
    return Response(status_code=204)


@router.post(
    "/login-link",
    status_code=202,
    tags=["accounts"],
    summary="Mail a passwordless login link (same answer whether the address exists or not)",
    responses={429: RATE_LIMITED},
)
async def request_login_link(
    body: EmailIn, uow: UoW, ctx: Ctx, background: BackgroundTasks, client: ClientInfo
) -> dict[str, str]:
    return await _accept(
        client, background, ctx, "login_link", accounts.request_login_link, uow, body.email
    )


@router.post(
    "/login-link/consume",
    tags=["accounts"],
    summary="Exchange the token of a login link for an access and a refresh token",
    responses={400: INVALID_TOKEN},
)
async def consume_login_link(body: TokenIn, uow: UoW, ctx: Ctx, client: ClientInfo) -> TokenOut:
    return await accounts.consume_login_link(uow, ctx, body.token, client)


@router.patch(
    "/me",
    tags=["accounts"],
    summary="Change the caller's full name or locale",
    responses={401: UNAUTHORIZED, 422: {"description": "invalid value", **PROBLEM}},
)
async def update_me(body: UserUpdate, uow: UoW, caller: Caller) -> UserPublic:
    return user_public(await accounts.update_profile(uow, caller, body))


@router.delete(
    "/me",
    status_code=204,
    tags=["accounts"],
    summary="Delete the caller's account: personal data anonymised, every session ended",
    responses={401: UNAUTHORIZED},
)
async def delete_me(
    body: AccountDeleteIn, uow: UoW, ctx: Ctx, revoker: Revoker, caller: Caller
) -> Response:
    await accounts.delete_account(uow, ctx, revoker, caller, body.password)
    return Response(status_code=204)
