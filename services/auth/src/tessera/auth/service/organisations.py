"""Organisations and memberships: one function, one transaction.

Access is decided from the database on every call (the ``orgs`` claim of a token may be up
to one access-token lifetime old): members read their organisation, its admins change it,
superadmins do anything. An organisation always keeps at least one admin.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Literal

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from tessera.auth import audit, domain, models
from tessera.auth.events import (
    MembershipGranted,
    MembershipRevoked,
    OrganisationCreated,
    OrganisationUpdated,
)
from tessera.auth.models import Membership, Organisation, User, utcnow
from tessera.common.db import UnitOfWork
from tessera.common.pagination import PageParams
from tessera.common.problems import Problem
from tessera.common.security import Principal

__all__ = [
    "add_member",
    "create_organisation",
    "get_organisation",
    "list_members",
    "list_organisations",
    "remove_member",
    "rename_organisation",
]

Role = Literal["admin", "member"]


class OrganisationNotFound(Problem):
    status = 404
    code = "organisation_not_found"
    title = "No such organisation"


class NameTaken(Problem):
    status = 409
    code = "organisation_name_taken"
    title = "An organisation with this name already exists"


class NotAdmin(Problem):
    status = 403
    code = "not_organisation_admin"
    title = "Only an admin of this organisation may do this"


class LastAdmin(Problem):
    status = 409
    code = "last_admin"
    title = "An organisation must keep at least one admin"


class UserNotFound(Problem):
    status = 404
    code = "user_not_found"
    title = "No such user"


@dataclass(frozen=True)
class MemberView:
    user_id: uuid.UUID
    email: str
    full_name: str
    role: str


def _normalize(name: str) -> str:
    return " ".join(name.split()).lower()


async def _caller(uow: UnitOfWork, caller: Principal) -> User:
    user = await models.live_user(uow.session, caller.user_id)
    if user is None:
        raise domain.AccountGone()
    return user


async def _role(uow: UnitOfWork, organisation_id: uuid.UUID, user_id: uuid.UUID) -> str | None:
    membership = await uow.session.get(Membership, (organisation_id, user_id))
    return membership.role if membership else None


async def _visible(uow: UnitOfWork, organisation_id: uuid.UUID, user: User) -> Organisation:
    """The organisation if ``user`` may see it; 404 otherwise (no probing for ids)."""
    organisation = await uow.session.get(Organisation, organisation_id)
    if organisation is None:
        raise OrganisationNotFound()
    if not user.is_superadmin and await _role(uow, organisation_id, user.id) is None:
        raise OrganisationNotFound()
    return organisation


async def _require_admin(uow: UnitOfWork, organisation_id: uuid.UUID, user: User) -> Organisation:
    organisation = await _visible(uow, organisation_id, user)
    if not user.is_superadmin and await _role(uow, organisation_id, user.id) != "admin":
        raise NotAdmin()
    return organisation


async def create_organisation(
    uow: UnitOfWork, name: str, caller: Principal | None, *, admin_id: uuid.UUID | None = None
) -> Organisation:
    """Create an organisation; its creator (or ``admin_id``, from the CLI) is its admin."""
    async with uow:
        creator = await _caller(uow, caller) if caller is not None else None
        first_admin = admin_id or (creator.id if creator else None)
        organisation = Organisation(
            name=" ".join(name.split()),
            name_normalized=_normalize(name),
            created_by=creator.id if creator else None,
        )
        uow.session.add(organisation)
        try:
            await uow.session.flush()
        except IntegrityError as exc:
            raise NameTaken() from exc
        uow.publish(
            OrganisationCreated(
                organisation_id=organisation.id,
                name=organisation.name,
                created_by=organisation.created_by,
            ),
            subject=str(organisation.id),
        )
        audit.record(
            uow,
            actor_id=creator.id if creator else None,
            action="organisation.created",
            target_type="organisation",
            target_id=organisation.id,
            organisation_id=organisation.id,
            after={"name": organisation.name, "first_admin": str(first_admin)},
        )
        if first_admin is not None:
            uow.session.add(
                Membership(organisation_id=organisation.id, user_id=first_admin, role="admin")
            )
            uow.publish(
                MembershipGranted(
                    organisation_id=organisation.id, user_id=first_admin, role="admin"
                ),
                subject=str(organisation.id),
            )
        await uow.commit()
    return organisation


async def rename_organisation(
    uow: UnitOfWork, organisation_id: uuid.UUID, name: str, caller: Principal
) -> Organisation:
    async with uow:
        acting = await _caller(uow, caller)
        organisation = await _require_admin(uow, organisation_id, acting)
        audit.record(
            uow,
            actor_id=acting.id,
            action="organisation.renamed",
            target_type="organisation",
            target_id=organisation.id,
            organisation_id=organisation.id,
            before={"name": organisation.name},
            after={"name": " ".join(name.split())},
        )
        organisation.name = " ".join(name.split())
        organisation.name_normalized = _normalize(name)
        organisation.updated_at = utcnow()
        try:
            await uow.session.flush()
        except IntegrityError as exc:
            raise NameTaken() from exc
        uow.publish(
            OrganisationUpdated(organisation_id=organisation.id, name=organisation.name),
            subject=str(organisation.id),
        )
        await uow.commit()
    return organisation


async def get_organisation(
    uow: UnitOfWork, organisation_id: uuid.UUID, caller: Principal
) -> Organisation:
    async with uow:
        return await _visible(uow, organisation_id, await _caller(uow, caller))


async def list_organisations(
    uow: UnitOfWork, caller: Principal, page: PageParams
) -> tuple[list[Organisation], int]:
    """The caller's organisations; every organisation for a superadmin."""
    async with uow:
        user = await _caller(uow, caller)
        stmt = select(Organisation)
        if not user.is_superadmin:
            stmt = stmt.join(Membership, Membership.organisation_id == Organisation.id).where(
                Membership.user_id == user.id
            )
        total = await uow.session.scalar(select(func.count()).select_from(stmt.subquery()))
        rows = await uow.session.execute(
            stmt.order_by(Organisation.name_normalized, Organisation.id)
            .limit(page.limit)
            .offset(page.offset)
        )
        return list(rows.scalars()), int(total or 0)


async def list_members(
    uow: UnitOfWork, organisation_id: uuid.UUID, caller: Principal, page: PageParams
) -> tuple[list[MemberView], int]:
    async with uow:
        await _visible(uow, organisation_id, await _caller(uow, caller))
        where = Membership.organisation_id == organisation_id
        total = await uow.session.scalar(select(func.count()).select_from(Membership).where(where))
        rows = await uow.session.execute(
            select(Membership.user_id, User.email, User.full_name, Membership.role)
            .join(User, User.id == Membership.user_id)
            .where(where)
            .order_by(User.email_normalized, User.id)
            .limit(page.limit)
            .offset(page.offset)
        )
        return [MemberView(*row) for row in rows], int(total or 0)


async def add_member(
    uow: UnitOfWork, organisation_id: uuid.UUID, *, email: str, role: Role, caller: Principal | None
) -> MemberView:
    """Add a user by email, or change the role of a member (admins only)."""
    async with uow:
        acting = await _caller(uow, caller) if caller is not None else None
        if acting is not None:
            await _require_admin(uow, organisation_id, acting)
        elif await uow.session.get(Organisation, organisation_id) is None:
            raise OrganisationNotFound()
        user = await models.user_by_email(uow.session, email)
        if user is None or user.deleted_at is not None:
            raise UserNotFound()
        membership = await uow.session.get(Membership, (organisation_id, user.id))
        if membership is not None and membership.role == "admin" and role != "admin":
            await _keep_an_admin(uow, organisation_id, leaving=user.id)
        audit.record(
            uow,
            actor_id=acting.id if acting else None,
            action="membership.granted",
            target_type="user",
            target_id=user.id,
            organisation_id=organisation_id,
            before={"role": membership.role} if membership else None,
            after={"role": role},
        )
        if membership is None:
            membership = Membership(organisation_id=organisation_id, user_id=user.id, role=role)
            uow.session.add(membership)
        membership.role = role
        uow.publish(
            MembershipGranted(organisation_id=organisation_id, user_id=user.id, role=role),
            subject=str(organisation_id),
        )
        await uow.commit()
    return MemberView(user.id, user.email, user.full_name, role)


async def remove_member(
    uow: UnitOfWork, organisation_id: uuid.UUID, user_id: uuid.UUID, caller: Principal
) -> None:
    """Remove a member (admins), or leave an organisation (anyone, themselves)."""
    async with uow:
        acting = await _caller(uow, caller)
        if acting.id == user_id:
            await _visible(uow, organisation_id, acting)
        else:
            await _require_admin(uow, organisation_id, acting)
        membership = await uow.session.get(Membership, (organisation_id, user_id))
        if membership is None:
            raise UserNotFound("not a member of this organisation")
        if membership.role == "admin":
            await _keep_an_admin(uow, organisation_id, leaving=user_id)
        audit.record(
            uow,
            actor_id=acting.id,
            action="membership.revoked",
            target_type="user",
            target_id=user_id,
            organisation_id=organisation_id,
            before={"role": membership.role},
        )
        await uow.session.delete(membership)
        uow.publish(
            MembershipRevoked(organisation_id=organisation_id, user_id=user_id),
            subject=str(organisation_id),
        )
        await uow.commit()


async def _keep_an_admin(
    uow: UnitOfWork, organisation_id: uuid.UUID, *, leaving: uuid.UUID
) -> None:
    """Refuse to lose the last admin; locks the admin rows so two admins demoting each other
    at the same time cannot both succeed."""
    admins = await uow.session.execute(
        select(Membership.user_id)
        .where(
            Membership.organisation_id == organisation_id,
            Membership.role == "admin",
        )
        .with_for_update()
    )
    if not [user_id for (user_id,) in admins if user_id != leaving]:
        raise LastAdmin()


async def claims_for(uow: UnitOfWork, user_id: uuid.UUID) -> tuple[list[str], dict[str, str]]:
    """The ``roles`` and ``orgs`` claims of a user's access tokens (inside a unit of work)."""
    user = await uow.session.get(User, user_id)
    roles = ["superadmin"] if user is not None and user.is_superadmin else []
    rows = await uow.session.execute(
        select(Membership.organisation_id, Membership.role).where(Membership.user_id == user_id)
    )
    return roles, {str(org): role for org, role in rows}
