"""Auth's use cases: one function, one transaction; only this module commits."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy.exc import IntegrityError

from tessera.auth import domain, models
from tessera.auth.events import UserRegistered
from tessera.auth.keys import KeyRing
from tessera.auth.models import EmailToken, User, utcnow
from tessera.auth.passwords import Passwords
from tessera.auth.schemas import LoginIn, RegisterIn, TokenOut
from tessera.auth.settings import Settings
from tessera.auth.tokens import open_session
from tessera.common.db import UnitOfWork
from tessera.common.problems import Problem
from tessera.common.security import Principal

__all__ = ["AuthContext", "current_user", "login", "register"]


@dataclass(frozen=True)
class AuthContext:
    settings: Settings
    passwords: Passwords
    keys: KeyRing


@dataclass(frozen=True)
class ClientInfo:
    ip_address: str | None = None
    user_agent: str | None = None


async def register(uow: UnitOfWork, ctx: AuthContext, cmd: RegisterIn) -> User:
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
    async with uow:
        user = await models.user_by_email(uow.session, cmd.email)
        ok = await ctx.passwords.verify(user.password_hash if user else None, cmd.password)
        if user is None or not ok:
            raise domain.InvalidCredentials()
        if ctx.passwords.needs_rehash(user.password_hash):
            user.password_hash = await ctx.passwords.hash(cmd.password)
        tokens = await open_session(
            uow,
            user=user,
            keys=ctx.keys,
            refresh_ttl_s=ctx.settings.refresh_token_ttl_s,
            ip_address=client.ip_address,
            user_agent=client.user_agent,
        )
        await uow.commit()
    return tokens


async def current_user(uow: UnitOfWork, caller: Principal) -> User:
    async with uow:
        user = await uow.session.get(User, caller.user_id)
    if user is None:
        raise Problem("the account no longer exists", status=401, code="unauthorized")
    return user


async def ensure_signing_key(uow: UnitOfWork, keys: KeyRing) -> None:
    async with uow:
        await keys.ensure_key(uow.session)
        await uow.commit()
    async with uow:
        await keys.load(uow.session)


def user_id_of(user: User) -> uuid.UUID:
    return user.id
