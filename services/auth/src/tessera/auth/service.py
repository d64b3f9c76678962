"""Auth's use cases: one function, one transaction; only this module commits."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy.exc import IntegrityError

from tessera.auth import audit, domain, models
from tessera.auth.abuse import Guard
from tessera.auth.events import AccountLocked, UserRegistered
from tessera.auth.keys import KeyRing
from tessera.auth.models import EmailToken, User, utcnow
from tessera.auth.passwords import Passwords
from tessera.auth.schemas import LoginIn, RegisterIn, TokenOut
from tessera.auth.settings import Settings
from tessera.auth.tokens import open_session
from tessera.common.db import UnitOfWork
from tessera.common.security import Principal

__all__ = ["AuthContext", "current_user", "login", "register"]


@dataclass(frozen=True)
class AuthContext:
    settings: Settings
    passwords: Passwords
    keys: KeyRing
    guard: Guard | None = None


@dataclass(frozen=True)
class ClientInfo:
    ip_address: str | None = None
    user_agent: str | None = None


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


async def login(
    uow: UnitOfWork, ctx: AuthContext, cmd: LoginIn, client: ClientInfo | None = None
) -> TokenOut:
    client = client or ClientInfo()
    if ctx.guard is not None:
        await ctx.guard.limit("login", ip=client.ip_address, email=cmd.email)
        await ctx.guard.check_lock(cmd.email)
    async with uow:
        user = await models.user_by_email(uow.session, cmd.email)
        ok = await ctx.passwords.verify(user.password_hash if user else None, cmd.password)
        if user is None or not ok:
            locked_for = await ctx.guard.failed_login(cmd.email) if ctx.guard else None
            audit.record(
                uow,
                actor_id=None,
                action="login.failed",
                target_type="user",
                target_id=user.id if user else None,
                after={"locked_for_s": locked_for} if locked_for else None,
            )
            if locked_for is not None and user is not None:
                uow.publish(
                    AccountLocked(
                        user_id=user.id,
                        email=user.email,
                        full_name=user.full_name,
                        locale=user.locale,
                        locked_for_s=locked_for,
                        locked_until=(utcnow() + timedelta(seconds=locked_for)).isoformat(),
                    ),
                    subject=str(user.id),
                )
            await uow.commit()
            raise domain.InvalidCredentials()
        if ctx.guard is not None:
            await ctx.guard.succeeded_login(cmd.email)
        audit.record(
            uow, actor_id=user.id, action="login.succeeded", target_type="user", target_id=user.id
        )
        if ctx.passwords.needs_rehash(user.password_hash):
            user.password_hash = await ctx.passwords.hash(cmd.password)
        tokens = await sign_in(uow, ctx, user, client)
        await uow.commit()
    return tokens


async def sign_in(uow: UnitOfWork, ctx: AuthContext, user: User, client: ClientInfo) -> TokenOut:
    """Open a session for ``user`` from ``client`` (inside the caller's unit of work)."""
    return await open_session(
        uow,
        user=user,
        keys=ctx.keys,
        refresh_ttl_s=ctx.settings.refresh_token_ttl_s,
        ip_address=client.ip_address,
        user_agent=client.user_agent,
    )


async def current_user(uow: UnitOfWork, caller: Principal) -> User:
    async with uow:
        user = await models.live_user(uow.session, caller.user_id)
    if user is None:
        raise domain.AccountGone()
    return user


async def ensure_signing_key(uow: UnitOfWork, keys: KeyRing) -> None:
    async with uow:
        await keys.ensure_key(uow.session)
        await uow.commit()
    async with uow:
        await keys.load(uow.session)
