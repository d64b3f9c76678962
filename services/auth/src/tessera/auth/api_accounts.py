"""Auth's HTTP routes for accounts: translate HTTP to use cases; no SQL here.

"Mail me a link" requests (verification resend, recovery, login link) answer 202 before any
lookup: the work runs as a background task after the response is sent, so neither the
answer nor its timing tells whether the address has an account.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import APIRouter, BackgroundTasks, Depends, Request, Response

from tessera.auth import accounts, service
from tessera.auth.api import PROBLEM, Ctx, UoW, _public
from tessera.auth.schemas import (
    AccountDeleteIn,
    EmailIn,
    PasswordChangeIn,
    PasswordResetIn,
    TokenIn,
    TokenOut,
    UserPublic,
    UserUpdate,
)
from tessera.common.db import UnitOfWork
from tessera.common.revocation import Revocations
from tessera.common.security import CurrentPrincipal

__all__ = ["router"]

router = APIRouter(prefix="/auth", tags=["accounts"])

ACCEPTED = "Accepted: if the address has an account, an email is on its way"
INVALID_TOKEN: dict[str, Any] = {"description": "invalid, expired or used token", **PROBLEM}
WEAK: dict[str, Any] = {"description": "invalid input or weak password", **PROBLEM}
UNAUTHORIZED: dict[str, Any] = {"description": "missing/invalid token or password", **PROBLEM}


def _revocations(request: Request) -> Revocations:
    return request.app.state.runtime.revocations


Revoker = Annotated[Revocations, Depends(_revocations)]


def _client(request: Request) -> service.ClientInfo:
    return service.ClientInfo(
        ip_address=request.client.host if request.client else None,
        user_agent=request.headers.get("user-agent"),
    )


@router.post(
    "/verify",
    summary="Confirm the email address with the token from the verification mail",
    responses={400: INVALID_TOKEN},
)
async def verify(body: TokenIn, uow: UoW) -> UserPublic:
    return _public(await accounts.verify_email(uow, body.token))


async def _accept(
    request: Request,
    background: BackgroundTasks,
    ctx: service.AuthContext,
    action: str,
    work: Callable[[UnitOfWork, service.AuthContext, str], Awaitable[object]],
    uow: UnitOfWork,
    email: str,
) -> dict[str, str]:
    """Count the attempt (per address and account), answer 202 and do ``work`` afterwards:
    the answer and its timing are the same whether the address exists or not."""
    if ctx.guard is not None:
        await ctx.guard.limit(
            action, ip=request.client.host if request.client else None, email=email
        )
    background.add_task(work, uow, ctx, email)
    return {"detail": ACCEPTED}


@router.post(
    "/verify/resend",
    status_code=202,
    summary="Mail a new verification link (same answer whether the address exists or not)",
)
async def resend_verification(
    body: EmailIn, uow: UoW, ctx: Ctx, background: BackgroundTasks, request: Request
) -> dict[str, str]:
    return await _accept(
        request, background, ctx, "verify_resend", accounts.resend_verification, uow, body.email
    )


@router.post(
    "/password/recover",
    status_code=202,
    summary="Mail a password reset link (same answer whether the address exists or not)",
)
async def recover_password(
    body: EmailIn, uow: UoW, ctx: Ctx, background: BackgroundTasks, request: Request
) -> dict[str, str]:
    return await _accept(
        request, background, ctx, "recover", accounts.request_password_reset, uow, body.email
    )


@router.post(
    "/password/reset",
    status_code=204,
    summary="Set a new password with the token from the reset mail; ends every session",
    responses={400: INVALID_TOKEN, 422: WEAK},
)
async def reset_password(body: PasswordResetIn, uow: UoW, ctx: Ctx, revoker: Revoker) -> Response:
    await accounts.reset_password(uow, ctx, revoker, body.token, body.new_password)
    return Response(status_code=204)


@router.post(
    "/password/change",
    status_code=204,
    summary="Change the caller's password; ends every other session",
    responses={401: UNAUTHORIZED, 422: WEAK},
)
async def change_password(
    body: PasswordChangeIn, uow: UoW, ctx: Ctx, revoker: Revoker, caller: CurrentPrincipal
) -> Response:
    await accounts.change_password(
        uow, ctx, revoker, caller, body.current_password, body.new_password
    )
    return Response(status_code=204)


@router.post(
    "/login-link",
    status_code=202,
    summary="Mail a passwordless login link (same answer whether the address exists or not)",
)
async def request_login_link(
    body: EmailIn, uow: UoW, ctx: Ctx, background: BackgroundTasks, request: Request
) -> dict[str, str]:
    return await _accept(
        request, background, ctx, "login_link", accounts.request_login_link, uow, body.email
    )


@router.post(
    "/login-link/consume",
    summary="Exchange the token of a login link for an access and a refresh token",
    responses={400: INVALID_TOKEN},
)
async def consume_login_link(body: TokenIn, uow: UoW, ctx: Ctx, request: Request) -> TokenOut:
    return await accounts.consume_login_link(uow, ctx, body.token, _client(request))


@router.patch(
    "/me",
    summary="Change the caller's full name or locale",
    responses={401: UNAUTHORIZED, 422: {"description": "invalid value", **PROBLEM}},
)
async def update_me(body: UserUpdate, uow: UoW, caller: CurrentPrincipal) -> UserPublic:
    return _public(await accounts.update_profile(uow, caller, body))


@router.delete(
    "/me",
    status_code=204,
    summary="Delete the caller's account: personal data anonymised, every session ended",
    responses={401: UNAUTHORIZED},
)
async def delete_me(
    body: AccountDeleteIn, uow: UoW, ctx: Ctx, revoker: Revoker, caller: CurrentPrincipal
) -> Response:
    await accounts.delete_account(uow, ctx, revoker, caller, body.password)
    return Response(status_code=204)
