"""Logging in, sessions and tokens: opening, rotating, listing and revoking sessions.

Every use case that logs someone in (:func:`login`, a login link) calls :func:`sign_in`,
which calls :func:`open_session`; every one that ends sessions (logout, password change or
reset, account deletion, refresh-token reuse) calls :func:`revoke_sessions` inside its unit
of work, before its commit.

Like every use case, :func:`login`, :func:`refresh`, :func:`logout`, :func:`list_sessions`
and :func:`revoke_session` are one transaction each and commit themselves.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import func, select

from tessera.auth import audit, domain, models
from tessera.auth.events import AccountLocked, SessionRevoked
from tessera.auth.keys import KeyRing
from tessera.auth.models import RefreshToken, Session, User, utcnow
from tessera.auth.schemas import LoginIn, SessionPublic, SessionsPage, TokenOut
from tessera.auth.service import organisations
from tessera.auth.service.context import AuthContext, ClientInfo
from tessera.common.db import UnitOfWork
from tessera.common.problems import Problem
from tessera.common.revocation import Revocations
from tessera.common.security import Principal

__all__ = [
    "InvalidRefreshToken",
    "RefreshTokenReused",
    "SessionNotFound",
    "TokenPolicy",
    "ensure_signing_key",
    "list_sessions",
    "login",
    "logout",
    "open_session",
    "refresh",
    "revoke_session",
    "revoke_sessions",
    "sign_in",
]


class InvalidRefreshToken(Problem):
    """Unknown, expired, revoked or already used: the client must log in again."""

    status = 401
    code = "invalid_refresh_token"
    title = "The refresh token is invalid, expired or revoked"


class RefreshTokenReused(InvalidRefreshToken):
    """A rotated refresh token came back: its whole session family has been revoked."""


class SessionNotFound(Problem):
    status = 404
    code = "session_not_found"
    title = "No such session"


@dataclass(frozen=True)
class TokenPolicy:
    """What the token use cases need besides the unit of work."""

    keys: KeyRing
    revocations: Revocations
    access_token_ttl_s: int


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


async def open_session(
    uow: UnitOfWork,
    *,
    user: User,
    keys: KeyRing,
    refresh_ttl_s: int,
    ip_address: str | None = None,
    user_agent: str | None = None,
) -> TokenOut:
    """Start a session (a refresh-token family) for ``user``; the caller commits."""
    refresh = domain.new_token()
    expires = utcnow() + timedelta(seconds=refresh_ttl_s)
    session = Session(
        user_id=user.id,
        ip_address=ip_address,
        user_agent=(user_agent or "")[:512] or None,
        expires_at=expires,
    )
    uow.session.add(session)
    await uow.session.flush()
    uow.session.add(
        RefreshToken(
            token_hash=domain.hash_token(refresh), session_id=session.id, expires_at=expires
        )
    )
    access, ttl = await _access_token(uow, keys, user_id=user.id, session_id=session.id)
    return TokenOut(access_token=access, refresh_token=refresh, expires_in=ttl)


async def _access_token(
    uow: UnitOfWork, keys: KeyRing, *, user_id: uuid.UUID, session_id: uuid.UUID
) -> tuple[str, int]:
    """An access token with the user's current ``roles`` and ``orgs`` (read in ``uow``), so
    a membership change reaches the claims at the next login or refresh."""
    roles, orgs = await organisations.claims_for(uow, user_id)
    return keys.issue_access_token(user_id=user_id, session_id=session_id, roles=roles, orgs=orgs)


async def revoke_sessions(
    uow: UnitOfWork,
    revocations: Revocations,
    *,
    user_id: uuid.UUID,
    reason: str,
    access_token_ttl_s: int,
    only: uuid.UUID | None = None,
    keep: uuid.UUID | None = None,
) -> list[uuid.UUID]:
    """Revoke the user's live sessions (one with ``only``, all but ``keep`` with ``keep``).

    Each session's ``sid`` is deny-listed in Redis *before* the caller commits (a failed
    commit then costs a re-login, never a session that stays usable) for as long as an access
    token issued before now can live, and ``auth.session.revoked`` is published.
    """
    stmt = select(Session).where(
        Session.user_id == user_id,
        Session.revoked_at.is_(None),
    )
    if only is not None:
        stmt = stmt.where(Session.id == only)
    if keep is not None:
        stmt = stmt.where(Session.id != keep)
    sessions = list((await uow.session.execute(stmt.with_for_update())).scalars())
    now = utcnow()
    until = (now + timedelta(seconds=access_token_ttl_s + 60)).timestamp()
    for session in sessions:
        await revocations.revoke_session(str(session.id), until=until)
        session.revoked_at = now
        session.revoked_reason = reason
        audit.record(
            uow,
            actor_id=user_id,
            action="session.revoked",
            target_type="session",
            target_id=session.id,
            after={"reason": reason},
        )
        uow.publish(
            SessionRevoked(session_id=session.id, user_id=user_id, reason=reason),
            subject=str(session.id),
        )
    return [s.id for s in sessions]


async def refresh(uow: UnitOfWork, policy: TokenPolicy, refresh_token: str) -> TokenOut:
    """Rotate ``refresh_token``: mark it used, issue its successor and a new access token.

    The token's row is locked (``FOR UPDATE``), so of two concurrent refreshes with one token
    exactly one rotates it; the other then finds it used. A used token coming back means
    it leaked (or two clients race): the whole session family is revoked, committed, and
    the caller gets 401 — the thief and the owner both have to log in again.
    """
    now = utcnow()
    async with uow:
        token = (
            await uow.session.execute(
                select(RefreshToken)
                .where(RefreshToken.token_hash == domain.hash_token(refresh_token))
                .with_for_update()
            )
        ).scalar_one_or_none()
        if token is None or token.expires_at <= now:
            raise InvalidRefreshToken()
        session = (
            await uow.session.execute(
                select(Session).where(Session.id == token.session_id).with_for_update()
            )
        ).scalar_one()
        if session.revoked_at is not None or session.expires_at <= now:
            raise InvalidRefreshToken()
        if token.used_at is not None:
            await revoke_sessions(
                uow,
                policy.revocations,
                user_id=session.user_id,
                reason="refresh_token_reuse",
                access_token_ttl_s=policy.access_token_ttl_s,
                only=session.id,
            )
            await uow.commit()
            raise RefreshTokenReused("the refresh token was already used; the session is revoked")
        user = await uow.session.get(User, session.user_id)
        if user is None or user.deleted_at is not None:
            raise InvalidRefreshToken()
        token.used_at = now
        session.last_used_at = now
        successor = domain.new_token()
        uow.session.add(
            RefreshToken(
                token_hash=domain.hash_token(successor),
                session_id=session.id,
                expires_at=session.expires_at,
            )
        )
        access, ttl = await _access_token(uow, policy.keys, user_id=user.id, session_id=session.id)
        await uow.commit()
    return TokenOut(access_token=access, refresh_token=successor, expires_in=ttl)


async def logout(
    uow: UnitOfWork,
    policy: TokenPolicy,
    caller: Principal,
    *,
    refresh_token: str | None = None,
) -> None:
    """End the caller's session (and the one ``refresh_token`` belongs to, if it is theirs).

    Its ``sid`` is deny-listed at once, so its access tokens are refused by every service
    from now on, and its refresh tokens are refused because the session is revoked.
    """
    async with uow:
        sessions: set[uuid.UUID] = set()
        if caller.session_id:
            sessions.add(uuid.UUID(caller.session_id))
        if refresh_token:
            token = await uow.session.get(RefreshToken, domain.hash_token(refresh_token))
            if token is not None:
                sessions.add(token.session_id)
        for sid in sorted(sessions):
            # revoke_sessions filters by user: a refresh token of someone else ends nothing
            await revoke_sessions(
                uow,
                policy.revocations,
                user_id=caller.user_id,
                reason="logout",
                access_token_ttl_s=policy.access_token_ttl_s,
                only=sid,
            )
        await uow.commit()


async def list_sessions(
    uow: UnitOfWork, caller: Principal, *, limit: int, offset: int
) -> SessionsPage:
    """The caller's unexpired sessions (revoked ones too, flagged), newest first."""
    now = utcnow()
    mine = (Session.user_id == caller.user_id) & (Session.expires_at > now)
    async with uow:
        total = await uow.session.scalar(select(func.count()).select_from(Session).where(mine))
        rows = (
            await uow.session.execute(
                select(Session)
                .where(mine)
                .order_by(Session.created_at.desc(), Session.id.desc())
                .limit(limit)
                .offset(offset)
            )
        ).scalars()
        items = [
            SessionPublic(
                id=s.id,
                created_at=s.created_at,
                last_used_at=s.last_used_at,
                expires_at=s.expires_at,
                ip_address=s.ip_address,
                user_agent=s.user_agent,
                current=str(s.id) == caller.session_id,
                revoked=s.revoked_at is not None,
            )
            for s in rows
        ]
    return SessionsPage(items=items, total=total or 0, limit=limit, offset=offset)


async def revoke_session(
    uow: UnitOfWork, policy: TokenPolicy, caller: Principal, session_id: uuid.UUID
) -> None:
    """Revoke one of the caller's sessions; someone else's is "not found", like a wrong id.

    Revoking an already revoked session of the caller succeeds (idempotent).
    """
    async with uow:
        session = await uow.session.get(Session, session_id)
        if session is None or session.user_id != caller.user_id:
            raise SessionNotFound()
        await revoke_sessions(
            uow,
            policy.revocations,
            user_id=caller.user_id,
            reason="revoked_by_user",
            access_token_ttl_s=policy.access_token_ttl_s,
            only=session_id,
        )
        await uow.commit()


async def ensure_signing_key(uow: UnitOfWork, keys: KeyRing) -> None:
    """Create the first signing key if none signs, and load the keys into ``keys``."""
    async with uow:
        await keys.ensure_key(uow.session)
        await uow.commit()
    async with uow:
        await keys.load(uow.session)
