"""Sessions and tokens: opening a session, and revoking sessions (deny-list + event).

Every use case that logs someone in calls :func:`open_session`; every one that ends
sessions (logout, password change or reset, account deletion, refresh-token reuse) calls
:func:`revoke_sessions` inside its unit of work, before its commit.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

from sqlalchemy import select

from tessera.auth import domain
from tessera.auth.events import SessionRevoked
from tessera.auth.keys import KeyRing
from tessera.auth.models import RefreshToken, Session, User, utcnow
from tessera.auth.schemas import TokenOut
from tessera.common.db import UnitOfWork
from tessera.common.revocation import Revocations

__all__ = ["open_session", "revoke_sessions"]


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
    access, ttl = keys.issue_access_token(user_id=user.id, session_id=session.id)
    return TokenOut(access_token=access, refresh_token=refresh, expires_in=ttl)


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
        uow.publish(
            SessionRevoked(session_id=session.id, user_id=user_id, reason=reason),
            subject=str(session.id),
        )
    return [s.id for s in sessions]
