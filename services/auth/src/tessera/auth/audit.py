"""The audit log: who did what, when, from where, with before/after for changes.

Use cases call :func:`record` inside their unit of work, so an entry exists exactly when the
change does. Where the request came from is the kernel's :func:`current_request`. Values
pass through the logging redactor, so a secret handed in by mistake is masked, never stored.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from tessera.auth.domain import AccountGone
from tessera.auth.models import AuditEntry, Membership, live_user
from tessera.common.db import UnitOfWork
from tessera.common.http import current_request
from tessera.common.logging import redact
from tessera.common.pagination import PageParams
from tessera.common.problems import Problem
from tessera.common.security import Principal

__all__ = ["AuditFilter", "forget_user", "list_entries", "record"]


def record(
    uow: UnitOfWork | AsyncSession,
    *,
    actor_id: uuid.UUID | None,
    action: str,
    target_type: str,
    target_id: object | None = None,
    organisation_id: uuid.UUID | None = None,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> None:
    """Add an audit entry to the unit of work (written with its commit)."""
    context = current_request()
    session = uow.session if isinstance(uow, UnitOfWork) else uow
    session.add(
        AuditEntry(
            actor_id=actor_id,
            action=action,
            target_type=target_type,
            target_id=str(target_id) if target_id is not None else None,
            organisation_id=organisation_id,
            ip_address=context.client_ip if context else None,
            user_agent=context.user_agent if context else None,
            request_id=context.request_id if context else None,
            before=redact(before) if before is not None else None,
            after=redact(after) if after is not None else None,
        )
    )


async def forget_user(uow: UnitOfWork, user_id: uuid.UUID) -> None:
    """Erase what entries about a deleted user say of them (the facts and times remain)."""
    await uow.session.execute(
        update(AuditEntry)
        .where(AuditEntry.target_type == "user", AuditEntry.target_id == str(user_id))
        .values(before=None, after=None)
    )


@dataclass(frozen=True)
class AuditFilter:
    actor_id: uuid.UUID | None = None
    action: str | None = None
    target_id: str | None = None
    organisation_id: uuid.UUID | None = None
    since: datetime | None = None
    until: datetime | None = None


async def list_entries(
    uow: UnitOfWork, caller: Principal, where: AuditFilter, page: PageParams
) -> tuple[list[AuditEntry], int]:
    """Superadmins see everything; organisation admins see their organisations' entries."""
    async with uow:
        user = await live_user(uow.session, caller.user_id)
        if user is None:
            raise AccountGone()
        stmt = select(AuditEntry)
        if not user.is_superadmin:
            administered = select(Membership.organisation_id).where(
                Membership.user_id == user.id, Membership.role == "admin"
            )
            if not (await uow.session.execute(administered.limit(1))).first():
                raise Problem(
                    "only superadmins and organisation admins read the audit log",
                    status=403,
                    code="forbidden",
                )
            stmt = stmt.where(AuditEntry.organisation_id.in_(administered))
        if where.actor_id is not None:
            stmt = stmt.where(AuditEntry.actor_id == where.actor_id)
        if where.action is not None:
            stmt = stmt.where(AuditEntry.action == where.action)
        if where.target_id is not None:
            stmt = stmt.where(AuditEntry.target_id == where.target_id)
        if where.organisation_id is not None:
            stmt = stmt.where(AuditEntry.organisation_id == where.organisation_id)
        if where.since is not None:
            stmt = stmt.where(AuditEntry.occurred_at >= where.since)
        if where.until is not None:
            stmt = stmt.where(AuditEntry.occurred_at < where.until)
        total = await uow.session.scalar(select(func.count()).select_from(stmt.subquery()))
        rows = await uow.session.execute(
            stmt.order_by(AuditEntry.occurred_at.desc(), AuditEntry.id.desc())
            .limit(page.limit)
            .offset(page.offset)
        )
        return list(rows.scalars()), int(total or 0)
