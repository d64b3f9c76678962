"""Account use cases: registration, the caller's account, email verification, recovery,
password change, login links, profile, deletion. One function, one transaction; each
commits its own unit of work.

Tokens mailed to users are random (256 bits), stored as their SHA-256 only, bound to one
purpose, single-use and short-lived. The answers to "mail me a link" requests never tell
whether the address has an account: the routes answer 202 before calling these use cases
(as background tasks), and unknown addresses still cost a token and its hash here.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from tessera.auth import audit, domain, models
from tessera.auth.events import (
    AccountDeleted,
    EmailVerificationRequested,
    LoginLinkRequested,
    PasswordChanged,
    PasswordRecoveryRequested,
    UserDeleted,
    UserRegistered,
)
from tessera.auth.models import EmailToken, User, utcnow
from tessera.auth.schemas import RegisterIn, TokenOut, UserUpdate
from tessera.auth.service.context import AuthContext, ClientInfo
from tessera.auth.service.tokens import revoke_sessions, sign_in
from tessera.common.db import UnitOfWork
from tessera.common.messaging import Event
from tessera.common.revocation import Revocations
from tessera.common.security import Principal

__all__ = [
    "VERIFY_EMAIL",
    "change_password",
    "consume_login_link",
    "current_user",
    "delete_account",
    "register",
    "request_login_link",
    "request_password_reset",
    "resend_verification",
    "reset_password",
    "update_profile",
    "verify_email",
]

VERIFY_EMAIL = "verify_email"
PASSWORD_RESET = "password_reset"  # noqa: S105 (a token purpose)
LOGIN_LINK = "login_link"
# not an argon2 hash: verifies nothing, ever
DELETED_PASSWORD_HASH = "!deleted"  # noqa: S105


def _mail_fields(user: User) -> dict[str, Any]:
    """Who a mail goes to: the fields every mail-triggering event carries."""
    return {
        "user_id": user.id,
        "email": user.email,
        "full_name": user.full_name,
        "locale": user.locale,
    }


async def _issue_token(
    uow: UnitOfWork, user: User, purpose: str, ttl_s: int
) -> tuple[str, datetime]:
    """A new token of ``purpose`` for ``user``; earlier unused ones of that purpose die."""
    now = utcnow()
    await uow.session.execute(
        update(EmailToken)
        .where(
            EmailToken.user_id == user.id,
            EmailToken.purpose == purpose,
            EmailToken.used_at.is_(None),
        )
        .values(used_at=now)
    )
    token = domain.new_token()
    expires = now + timedelta(seconds=ttl_s)
    uow.session.add(
        EmailToken(
            user_id=user.id,
            purpose=purpose,
            token_hash=domain.hash_token(token),
            expires_at=expires,
        )
    )
    return token, expires


def _equalise_unknown() -> None:
    """The work a known address costs before its database writes (token and its hash)."""
    domain.hash_token(domain.new_token())


async def _consume_token(uow: UnitOfWork, token: str, purpose: str) -> User:
    """The live user the unused, unexpired token of ``purpose`` belongs to; marks it used."""
    stmt = (
        select(EmailToken)
        .where(
            EmailToken.token_hash == domain.hash_token(token),
            EmailToken.purpose == purpose,
        )
        .with_for_update()
    )
    row = (await uow.session.execute(stmt)).scalar_one_or_none()
    now = utcnow()
    if row is None or row.used_at is not None or row.expires_at <= now:
        raise domain.InvalidToken()
    user = await uow.session.get(User, row.user_id, with_for_update=True)
    if user is None or user.deleted_at is not None:
        raise domain.InvalidToken()
    row.used_at = now
    return user


async def _live_user(uow: UnitOfWork, caller: Principal) -> User:
    user = await models.live_user(uow.session, caller.user_id, lock=True)
    if user is None:
        raise domain.AccountGone()
    return user


async def register(
    uow: UnitOfWork, ctx: AuthContext, cmd: RegisterIn, client: ClientInfo | None = None
) -> User:
    if ctx.guard is not None:
        await ctx.guard.limit("register", ip=(client or ClientInfo()).ip_address)
    domain.check_password_policy(
        cmd.password, email=cmd.email, min_length=ctx.settings.password_min_length
    )
    password_hash = await ctx.passwords.hash(cmd.password)
    token = domain.new_token()
    expires = utcnow() + timedelta(seconds=ctx.settings.verification_token_ttl_s)
    async with uow:
        if await models.user_by_email(uow.session, cmd.email) is not None:
            raise domain.EmailTaken()
        user = User(
            email=cmd.email,
            email_normalized=models.normalize_email(cmd.email),
            full_name=cmd.full_name,
            locale=cmd.locale,
            password_hash=password_hash,
        )
        uow.session.add(user)
        try:
            await uow.session.flush()
        except IntegrityError as exc:  # a concurrent registration won the unique index
            raise domain.EmailTaken() from exc
        audit.record(
            uow,
            actor_id=user.id,
            action="user.registered",
            target_type="user",
            target_id=user.id,
            after={"email": user.email, "full_name": user.full_name, "locale": user.locale},
        )
        uow.session.add(
            EmailToken(
                user_id=user.id,
                purpose="verify_email",
                token_hash=domain.hash_token(token),
                expires_at=expires,
            )
        )
        uow.publish(
            UserRegistered(
                user_id=user.id,
                email=user.email,
                full_name=user.full_name,
                locale=user.locale,
                verification_token=token,
                verification_expires_at=expires.isoformat(),
            ),
            subject=str(user.id),
        )
        await uow.commit()
    return user


async def current_user(uow: UnitOfWork, caller: Principal) -> models.UserView:
    """The caller's account (a read on the hot path: no transaction, no ORM)."""
    async with uow.driver() as driver:
        user = await models.live_user_view(driver, caller.user_id)
    if user is None:
        raise domain.AccountGone()
    return user


async def verify_email(uow: UnitOfWork, token: str) -> User:
    async with uow:
        user = await _consume_token(uow, token, VERIFY_EMAIL)
        if user.email_verified_at is None:
            user.email_verified_at = utcnow()
            user.updated_at = utcnow()
            audit.record(
                uow,
                actor_id=user.id,
                action="user.email_verified",
                target_type="user",
                target_id=user.id,
            )
        await uow.commit()
    return user


MailEvent = Callable[[User, str, datetime], Event]


async def _mail_a_token(
    uow: UnitOfWork,
    email: str,
    *,
    purpose: str,
    ttl_s: int,
    event: MailEvent,
    only_unverified: bool = False,
) -> None:
    """Issue a single-use token of ``purpose`` and publish the event that mails it; for an
    unknown (or deleted, or already verified) address do equivalent work and nothing else."""
    async with uow:
        user = await models.user_by_email(uow.session, email)
        if (
            user is None
            or user.deleted_at is not None
            or (only_unverified and user.email_verified_at is not None)
        ):
            _equalise_unknown()
            return
        token, expires = await _issue_token(uow, user, purpose, ttl_s)
        uow.publish(event(user, token, expires), subject=str(user.id))
        await uow.commit()


async def resend_verification(uow: UnitOfWork, ctx: AuthContext, email: str) -> None:
    """Mail a new verification link to an unverified account; silently nothing otherwise."""
    await _mail_a_token(
        uow,
        email,
        purpose=VERIFY_EMAIL,
        ttl_s=ctx.settings.verification_token_ttl_s,
        only_unverified=True,
        event=lambda user, token, expires: EmailVerificationRequested(
            **_mail_fields(user),
            verification_token=token,
            verification_expires_at=expires.isoformat(),
        ),
    )


async def request_password_reset(uow: UnitOfWork, ctx: AuthContext, email: str) -> None:
    await _mail_a_token(
        uow,
        email,
        purpose=PASSWORD_RESET,
        ttl_s=ctx.settings.password_reset_ttl_s,
        event=lambda user, token, expires: PasswordRecoveryRequested(
            **_mail_fields(user), reset_token=token, expires_at=expires.isoformat()
        ),
    )


async def reset_password(
    uow: UnitOfWork, ctx: AuthContext, revocations: Revocations, token: str, new_password: str
) -> None:
    """Set a new password from a recovery link; every session of the account ends."""
    async with uow:
        user = await _consume_token(uow, token, PASSWORD_RESET)
        if user.email_verified_at is None:  # the link proved the mailbox, as verification does
            user.email_verified_at = utcnow()
        domain.check_password_policy(
            new_password,
            email=user.email,
            min_length=ctx.settings.password_min_length,
            field="new_password",
        )
        await _set_password(uow, ctx, user, new_password)
        await revoke_sessions(
            uow,
            revocations,
            user_id=user.id,
            reason="password_reset",
            access_token_ttl_s=ctx.settings.access_token_ttl_s,
        )
        await uow.commit()


async def change_password(
    uow: UnitOfWork,
    ctx: AuthContext,
    revocations: Revocations,
    caller: Principal,
    current_password: str,
    new_password: str,
) -> None:
    """Change the caller's password; every session but the caller's ends."""
    async with uow:
        user = await _live_user(uow, caller)
        if not await ctx.passwords.verify(user.password_hash, current_password):
            raise domain.InvalidCredentials("the current password is wrong")
        domain.check_password_policy(
            new_password,
            email=user.email,
            min_length=ctx.settings.password_min_length,
            field="new_password",
        )
        await _set_password(uow, ctx, user, new_password)
        await revoke_sessions(
            uow,
            revocations,
            user_id=user.id,
            reason="password_changed",
            access_token_ttl_s=ctx.settings.access_token_ttl_s,
            keep=_session_uuid(caller),
        )
        await uow.commit()


def _session_uuid(caller: Principal) -> uuid.UUID | None:
    try:
        return uuid.UUID(caller.session_id) if caller.session_id else None
    except ValueError:
        return None


async def _set_password(uow: UnitOfWork, ctx: AuthContext, user: User, password: str) -> None:
    now = utcnow()
    user.password_hash = await ctx.passwords.hash(password)
    user.password_changed_at = now
    user.updated_at = now
    # a pending recovery link must not outlive the password it was asked against
    await uow.session.execute(
        update(EmailToken)
        .where(
            EmailToken.user_id == user.id,
            EmailToken.purpose == PASSWORD_RESET,
            EmailToken.used_at.is_(None),
        )
        .values(used_at=now)
    )
    uow.publish(PasswordChanged(**_mail_fields(user)), subject=str(user.id))
    audit.record(
        uow, actor_id=user.id, action="user.password_changed", target_type="user", target_id=user.id
    )


async def request_login_link(uow: UnitOfWork, ctx: AuthContext, email: str) -> None:
    await _mail_a_token(
        uow,
        email,
        purpose=LOGIN_LINK,
        ttl_s=ctx.settings.login_link_ttl_s,
        event=lambda user, token, expires: LoginLinkRequested(
            **_mail_fields(user), login_token=token, expires_at=expires.isoformat()
        ),
    )


async def consume_login_link(
    uow: UnitOfWork, ctx: AuthContext, token: str, client: ClientInfo | None = None
) -> TokenOut:
    """Log in with a mailed link; the link proves the address, so it also verifies it."""
    client = client or ClientInfo()
    async with uow:
        user = await _consume_token(uow, token, LOGIN_LINK)
        if user.email_verified_at is None:
            user.email_verified_at = utcnow()
            user.updated_at = utcnow()
        audit.record(
            uow,
            actor_id=user.id,
            action="login.succeeded",
            target_type="user",
            target_id=user.id,
            after={"method": "login_link"},
        )
        tokens = await sign_in(uow, ctx, user, client)
        await uow.commit()
    return tokens


async def update_profile(uow: UnitOfWork, caller: Principal, changes: UserUpdate) -> User:
    async with uow:
        user = await _live_user(uow, caller)
        values = changes.model_dump(exclude_unset=True, exclude_none=True)
        if values:
            audit.record(
                uow,
                actor_id=user.id,
                action="user.updated",
                target_type="user",
                target_id=user.id,
                before={name: getattr(user, name) for name in values},
                after=values,
            )
        for name, value in values.items():
            setattr(user, name, value)
        if values:
            user.updated_at = utcnow()
        await uow.commit()
    return user


async def delete_account(
    uow: UnitOfWork, ctx: AuthContext, revocations: Revocations, caller: Principal, password: str
) -> None:
    """Anonymise the caller's account, end its sessions and announce it: ``auth.user.deleted``
    without personal data for every service, and ``auth.account.deleted`` with the former
    address for the mailer's last email to it, both in this transaction.

    The row stays (ids referenced elsewhere keep resolving) but nothing in it names the
    person; the address is free to register again.
    """
    async with uow:
        user = await _live_user(uow, caller)
        if not await ctx.passwords.verify(user.password_hash, password):
            raise domain.InvalidCredentials("the password is wrong")
        goodbye = AccountDeleted(**_mail_fields(user))  # before the address is anonymised
        now = utcnow()
        anonymous = f"deleted-{user.id}@deleted.invalid"
        user.email = anonymous
        user.email_normalized = anonymous
        user.full_name = ""
        user.password_hash = DELETED_PASSWORD_HASH
        user.deleted_at = now
        user.updated_at = now
        await uow.session.execute(
            update(EmailToken)
            .where(
                EmailToken.user_id == user.id,
                EmailToken.used_at.is_(None),
            )
            .values(used_at=now)
        )
        await revoke_sessions(
            uow,
            revocations,
            user_id=user.id,
            reason="account_deleted",
            access_token_ttl_s=ctx.settings.access_token_ttl_s,
        )
        uow.publish(UserDeleted(user_id=user.id), subject=str(user.id))
        uow.publish(goodbye, subject=str(user.id))
        await audit.forget_user(uow, user.id)
        audit.record(
            uow, actor_id=user.id, action="user.deleted", target_type="user", target_id=user.id
        )
        await uow.commit()
