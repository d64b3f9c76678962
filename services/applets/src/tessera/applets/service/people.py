"""Who holds which role on an applet: the roles list, removing a role, a reviewer's
respondents, invitations (create, list, resend, revoke, accept, decline) and ownership
transfers (offer, accept, decline).

Every change of access publishes ``applets.access.granted`` or ``applets.access.revoked``
(answers and chat keep their own copies); invitations and transfers publish what the mailer
needs to write to the people concerned. Tokens are mailed, never answered: only their hash is
stored.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog

from tessera.applets import directory, store
from tessera.applets.domain import (
    INVITABLE,
    Access,
    Action,
    AppletNotFound,
    Forbidden,
    Role,
    hash_token,
    new_token,
)
from tessera.applets.events import (
    AccessGranted,
    AccessRevoked,
    InvitationAccepted,
    InvitationCreated,
    InvitationDeclined,
    InvitationReissued,
    InvitationRevoked,
    OwnershipTransferred,
    OwnershipTransferRequested,
)
from tessera.applets.schemas import InvitationIn
from tessera.applets.service.access import access_to
from tessera.common.db import UnitOfWork, driver_in_transaction
from tessera.common.problems import Problem
from tessera.common.security import Principal

__all__ = [
    "accept_invitation",
    "accept_transfer",
    "decline_invitation",
    "decline_transfer",
    "invite",
    "list_invitations",
    "list_roles",
    "offer_transfer",
    "remove_role",
    "resend_invitation",
    "revoke_invitation",
    "set_reviewer_respondents",
]

log = structlog.stdlib.get_logger(__name__)


class RoleNotFound(Problem):
    status = 404
    code = "role_not_found"
    title = "The user holds no such role on this applet"


class OwnerStays(Problem):
    status = 409
    code = "owner_cannot_be_removed"
    title = "An applet's owner is changed by transferring ownership"


class AlreadyHeld(Problem):
    status = 409
    code = "role_already_held"
    title = "That person already holds this role"


class InvitationPending(Problem):
    status = 409
    code = "invitation_pending"
    title = "A pending invitation for this address and role exists; resend it"


class SecretIdTaken(Problem):
    status = 409
    code = "secret_id_taken"
    title = "Another respondent of this applet has this secret id"


class InvitationNotFound(Problem):
    status = 404
    code = "invitation_not_found"
    title = "No such invitation"


class InvitationClosed(Problem):
    status = 409
    code = "invitation_not_pending"
    title = "The invitation was already answered or withdrawn"


class InvitationExpired(Problem):
    status = 410
    code = "invitation_expired"
    title = "The invitation has expired; ask for a new one"


class OtherAddress(Problem):
    status = 403
    code = "invitation_for_another_address"
    title = "This link was sent to another address than your account's"


class AccountNotKnownYet(Problem):
    status = 409
    code = "account_not_known_yet"
    title = "Your account is not known to the applets service yet; try again in a moment"


class NotInvited(Problem):
    status = 422
    code = "validation_failed"
    title = "The invitation is not valid"


class TransferNotFound(Problem):
    status = 404
    code = "transfer_not_found"
    title = "No such ownership transfer"


class TransferClosed(Problem):
    status = 409
    code = "transfer_not_pending"
    title = "The transfer was already answered or replaced"


class TransferExpired(Problem):
    status = 410
    code = "transfer_expired"
    title = "The transfer offer has expired"


class TransferToSelf(Problem):
    status = 409
    code = "transfer_to_owner"
    title = "The applet is yours already"


def _now() -> datetime:
    return datetime.now(UTC)


def _field(name: str, message: str) -> list[dict[str, Any]]:
    return [{"field": name, "in": "body", "type": "value_error", "message": message}]


# --- roles ------------------------------------------------------------------------------------


async def list_roles(
    uow: UnitOfWork,
    applet_id: uuid.UUID,
    caller: Principal,
    *,
    role: str | None,
    limit: int,
    offset: int,
) -> tuple[list[Any], int]:
    async with uow.driver() as conn:
        (await access_to(conn, applet_id, caller)).require(Action.read_roles)
        return await directory.roles_page(conn, applet_id, role=role, limit=limit, offset=offset)


def _may_manage(access: Access, role: Role) -> bool:
    return role in INVITABLE and access.may(INVITABLE[role])


async def remove_role(
    uow: UnitOfWork, applet_id: uuid.UUID, user_id: uuid.UUID, role: Role, caller: Principal
) -> None:
    """Take a role away (anyone may leave a role of their own, but the owner's)."""
    async with uow:
        conn = await driver_in_transaction(uow.session)
        access = await access_to(conn, applet_id, caller, lock=True)
        if role == Role.owner:
            raise OwnerStays()
        if user_id != caller.user_id and not _may_manage(access, role):
            raise Forbidden(f"your role may not remove a {role}")
        if not await directory.delete_role(conn, applet_id, user_id, role):
            raise RoleNotFound()
        uow.publish(
            AccessRevoked(applet_id=applet_id, user_id=user_id, role=role, reason="removed"),
            subject=str(applet_id),
        )
        if role == Role.respondent:
            await _drop_from_reviewers(uow, conn, applet_id, user_id)
        await uow.commit()


async def _drop_from_reviewers(
    uow: UnitOfWork, conn: Any, applet_id: uuid.UUID, respondent: uuid.UUID
) -> None:
    for changed in await directory.forget_respondent(conn, applet_id, respondent):
        uow.publish(
            AccessGranted(
                applet_id=applet_id,
                user_id=changed["user_id"],
                role=Role.reviewer,
                respondents=list(changed["respondents"]),
            ),
            subject=str(applet_id),
        )


async def _check_respondents(
    conn: Any, applet_id: uuid.UUID, respondents: Sequence[uuid.UUID], field: str
) -> list[uuid.UUID]:
    wanted = list(dict.fromkeys(respondents))
    known = await directory.respondents_among(conn, applet_id, wanted)
    unknown = [r for r in wanted if r not in known]
    if unknown:
        raise NotInvited(
            f"{field}: not respondents of this applet: {', '.join(map(str, unknown[:5]))}",
            errors=_field(field, f"{len(unknown)} of them are not respondents of this applet"),
        )
    return wanted


async def set_reviewer_respondents(
    uow: UnitOfWork,
    applet_id: uuid.UUID,
    reviewer_id: uuid.UUID,
    respondents: Sequence[uuid.UUID],
    caller: Principal,
) -> list[uuid.UUID]:
    """Whose answers a reviewer reads (respondents of this applet only)."""
    async with uow:
        conn = await driver_in_transaction(uow.session)
        access = await access_to(conn, applet_id, caller, lock=True)
        access.require(Action.assign_respondents)
        if await directory.role_grant(conn, applet_id, reviewer_id, Role.reviewer) is None:
            raise RoleNotFound("the user is not a reviewer of this applet")
        wanted = await _check_respondents(conn, applet_id, respondents, "respondents")
        await directory.set_respondents(conn, applet_id, reviewer_id, wanted)
        uow.publish(
            AccessGranted(
                applet_id=applet_id, user_id=reviewer_id, role=Role.reviewer, respondents=wanted
            ),
            subject=str(applet_id),
        )
        await uow.commit()
    return wanted


# --- invitations ------------------------------------------------------------------------------


def _invitation_status(row: Any, now: datetime) -> str:
    if row["status"] == "pending" and row["expires_at"] <= now:
        return "expired"
    return str(row["status"])


def invitation_view(row: Any, now: datetime | None = None) -> dict[str, Any]:
    found = dict(row)
    found.pop("total", None)
    found["status"] = _invitation_status(row, now or _now())
    return found


async def _name(conn: Any, user_id: uuid.UUID) -> tuple[str, str | None, str]:
    """``(name, email, locale)`` of a user as this service knows them."""
    found = await directory.user(conn, user_id)
    if found is None or found["deleted_at"] is not None:
        return "A Tessera user", None, "en"
    return found["full_name"] or found["email"] or "A Tessera user", found["email"], found["locale"]


async def invite(
    uow: UnitOfWork,
    applet_id: uuid.UUID,
    body: InvitationIn,
    caller: Principal,
    *,
    ttl: timedelta,
) -> dict[str, Any]:
    """Invite ``body.email`` with a role; the mailer sends the link (this answer never
    carries the token)."""
    role = Role(body.role)
    token = new_token()
    async with uow:
        conn = await driver_in_transaction(uow.session)
        access = await access_to(conn, applet_id, caller, lock=True)
        if not _may_manage(access, role):
            raise Forbidden(f"your role may not invite a {role}")
        _participant_fields(body, role)
        invitee = await directory.user_by_email(conn, body.email)
        if invitee is not None and role in await directory.roles_of(conn, applet_id, invitee["id"]):
            raise AlreadyHeld(f"{body.email} is a {role} of this applet already")
        if await directory.pending_invitation(conn, applet_id, body.email, role) is not None:
            raise InvitationPending()
        if body.secret_id is not None and await directory.secret_id_taken(
            conn, applet_id, body.secret_id
        ):
            raise SecretIdTaken(errors=_field("secret_id", "taken in this applet"))
        respondents: list[uuid.UUID] = []
        if role == Role.reviewer:
            respondents = await _check_respondents(conn, applet_id, body.respondents, "respondents")
        inviter_name, _, inviter_locale = await _name(conn, caller.user_id)
        locale = body.locale or (invitee["locale"] if invitee is not None else inviter_locale)
        now = _now()
        row = {
            "id": uuid.uuid4(), "applet_id": applet_id, "email": body.email.lower(),
            "role": role, "locale": locale, "nickname": body.nickname,
            "secret_id": body.secret_id, "respondents": respondents,
            "token_hash": hash_token(token), "invited_by": caller.user_id,
            "expires_at": now + ttl, "now": now,
        }  # fmt: skip
        await directory.insert_invitation(conn, row)
        uow.publish(
            InvitationCreated(
                invitation_id=row["id"],
                applet_id=applet_id,
                applet_name=access.applet["display_name"],
                email=row["email"],
                role=role,
                locale=locale,
                invitee_has_account=invitee is not None,
                invitee_name=None if invitee is None else invitee["full_name"],
                inviter_id=caller.user_id,
                inviter_name=inviter_name,
                accept_token=token,
                expires_at=row["expires_at"].isoformat(),
            ),
            subject=str(applet_id),
        )
        await uow.commit()
    return {
        **{k: v for k, v in row.items() if k not in ("token_hash", "now")},
        "status": "pending", "sent_count": 1, "user_id": None, "created_at": now,
        "updated_at": now,
    }  # fmt: skip


def _participant_fields(body: InvitationIn, role: Role) -> None:
    """Nickname and secret id are a respondent's, respondents a reviewer's."""
    errors = []
    if role != Role.respondent:
        errors += [
            _field(name, f"only respondents have a {name}")[0]
            for name in ("nickname", "secret_id")
            if getattr(body, name) is not None
        ]
    if role != Role.reviewer and body.respondents:
        errors += _field("respondents", "only reviewers are given respondents")
    if errors:
        raise NotInvited(", ".join(e["field"] for e in errors), errors=errors)


async def list_invitations(
    uow: UnitOfWork,
    applet_id: uuid.UUID,
    caller: Principal,
    *,
    status: str | None,
    limit: int,
    offset: int,
) -> tuple[list[dict[str, Any]], int]:
    now = _now()
    async with uow.driver() as conn:
        (await access_to(conn, applet_id, caller)).require(Action.invite_participants)
        rows, total = await directory.invitations_page(
            conn, applet_id, status=status, now=now, limit=limit, offset=offset
        )
    return [invitation_view(r, now) for r in rows], total


async def _managed_invitation(
    conn: Any, applet_id: uuid.UUID, invitation_id: uuid.UUID, caller: Principal
) -> tuple[Access, Any]:
    access = await access_to(conn, applet_id, caller, lock=True)
    access.require(Action.invite_participants)
    row = await directory.invitation(conn, applet_id, invitation_id)
    if row is None:
        raise InvitationNotFound()
    if not _may_manage(access, Role(row["role"])):
        raise Forbidden(f"your role may not manage invitations of a {row['role']}")
    if row["status"] != "pending":
        raise InvitationClosed(f"the invitation is {row['status']}")
    return access, row


async def resend_invitation(
    uow: UnitOfWork,
    applet_id: uuid.UUID,
    invitation_id: uuid.UUID,
    caller: Principal,
    *,
    ttl: timedelta,
) -> dict[str, Any]:
    """Send a pending (or expired) invitation again with a new token and a new expiry."""
    token = new_token()
    async with uow:
        conn = await driver_in_transaction(uow.session)
        access, row = await _managed_invitation(conn, applet_id, invitation_id, caller)
        now = _now()
        expires = now + ttl
        await directory.update_invitation(
            conn, invitation_id, token_hash=hash_token(token), expires_at=expires,
            sent_count=row["sent_count"] + 1, updated_at=now,
        )  # fmt: skip
        invitee = await directory.user_by_email(conn, row["email"])
        inviter_name, _, _ = await _name(conn, caller.user_id)
        uow.publish(
            InvitationReissued(
                invitation_id=invitation_id,
                applet_id=applet_id,
                applet_name=access.applet["display_name"],
                email=row["email"],
                role=row["role"],
                locale=row["locale"],
                invitee_has_account=invitee is not None,
                invitee_name=None if invitee is None else invitee["full_name"],
                inviter_id=caller.user_id,
                inviter_name=inviter_name,
                accept_token=token,
                expires_at=expires.isoformat(),
            ),
            subject=str(applet_id),
        )
        await uow.commit()
    return invitation_view(
        {**row, "expires_at": expires, "sent_count": row["sent_count"] + 1, "updated_at": now}
    )


async def revoke_invitation(
    uow: UnitOfWork, applet_id: uuid.UUID, invitation_id: uuid.UUID, caller: Principal
) -> None:
    async with uow:
        conn = await driver_in_transaction(uow.session)
        await _managed_invitation(conn, applet_id, invitation_id, caller)
        await directory.update_invitation(conn, invitation_id, status="revoked", updated_at=_now())
        uow.publish(
            InvitationRevoked(
                invitation_id=invitation_id, applet_id=applet_id, revoked_by=caller.user_id
            ),
            subject=str(applet_id),
        )
        await uow.commit()


async def _invitation_for_caller(conn: Any, token: str, caller: Principal) -> tuple[Any, Any]:
    """The pending invitation behind ``token``, addressed to the caller's own address."""
    row = await directory.invitation_by_hash(conn, hash_token(token))
    if row is None:
        raise InvitationNotFound()
    if row["status"] != "pending":
        raise InvitationClosed(f"the invitation is {row['status']}")
    if row["expires_at"] <= _now():
        raise InvitationExpired()
    me = await directory.user(conn, caller.user_id)
    if me is None or me["deleted_at"] is not None:
        raise AccountNotKnownYet()
    if (me["email"] or "").lower() != row["email"]:
        raise OtherAddress()
    applet = await store.applet_row(conn, row["applet_id"])
    if applet is None or applet["deleted_at"] is not None:
        raise AppletNotFound()
    return row, {"applet": applet, "me": me}


async def accept_invitation(uow: UnitOfWork, token: str, caller: Principal) -> dict[str, Any]:
    """The invitee, logged in with the invited address, takes the role."""
    async with uow:
        conn = await driver_in_transaction(uow.session)
        row, found = await _invitation_for_caller(conn, token, caller)
        applet, me = found["applet"], found["me"]
        applet_id, role, now = row["applet_id"], Role(row["role"]), _now()
        if role in await directory.roles_of(conn, applet_id, caller.user_id):
            raise AlreadyHeld(f"you are a {role} of this applet already")
        respondents: list[uuid.UUID] = []
        if role == Role.reviewer:  # those still respondents now
            known = await directory.respondents_among(conn, applet_id, row["respondents"])
            respondents = [r for r in row["respondents"] if r in known]
        await directory.grant_role(
            conn, applet_id, caller.user_id, role, granted_by=row["invited_by"], now=now,
            nickname=row["nickname"], secret_id=row["secret_id"], respondents=respondents,
        )  # fmt: skip
        if role == Role.respondent and applet["answers_possible_at"] is None:
            await store.update_applet(conn, applet_id, answers_possible_at=now)
        await directory.update_invitation(
            conn, row["id"], status="accepted", user_id=caller.user_id, updated_at=now
        )
        inviter_name, inviter_email, inviter_locale = await _name(conn, row["invited_by"])
        uow.publish(
            AccessGranted(
                applet_id=applet_id,
                user_id=caller.user_id,
                role=role,
                nickname=row["nickname"],
                secret_id=row["secret_id"],
                respondents=respondents,
            ),
            subject=str(applet_id),
        )
        uow.publish(
            InvitationAccepted(
                invitation_id=row["id"],
                applet_id=applet_id,
                applet_name=applet["display_name"],
                role=role,
                user_id=caller.user_id,
                invitee_name=me["full_name"] or me["email"],
                invitee_email=me["email"],
                inviter_id=row["invited_by"],
                inviter_email=inviter_email,
                inviter_name=inviter_name,
                inviter_locale=inviter_locale,
            ),
            subject=str(applet_id),
        )
        await uow.commit()
    log.info("invitation_accepted", applet_id=str(applet_id), role=role)
    return invitation_view({**row, "status": "accepted", "user_id": caller.user_id,
                            "updated_at": now})  # fmt: skip


async def decline_invitation(uow: UnitOfWork, token: str, caller: Principal) -> dict[str, Any]:
    async with uow:
        conn = await driver_in_transaction(uow.session)
        row, _ = await _invitation_for_caller(conn, token, caller)
        now = _now()
        await directory.update_invitation(
            conn, row["id"], status="declined", user_id=caller.user_id, updated_at=now
        )
        uow.publish(
            InvitationDeclined(
                invitation_id=row["id"],
                applet_id=row["applet_id"],
                role=row["role"],
                user_id=caller.user_id,
            ),
            subject=str(row["applet_id"]),
        )
        await uow.commit()
    return invitation_view({**row, "status": "declined", "user_id": caller.user_id,
                            "updated_at": now})  # fmt: skip


# --- ownership --------------------------------------------------------------------------------


async def offer_transfer(
    uow: UnitOfWork, applet_id: uuid.UUID, email: str, caller: Principal, *, ttl: timedelta
) -> dict[str, Any]:
    """The owner offers the applet to ``email``; it changes hands when they accept."""
    token = new_token()
    async with uow:
        conn = await driver_in_transaction(uow.session)
        access = await access_to(conn, applet_id, caller, lock=True)
        access.require(Action.transfer)
        recipient = await directory.user_by_email(conn, email)
        if recipient is not None and recipient["id"] == caller.user_id:
            raise TransferToSelf()
        owner_name, _, owner_locale = await _name(conn, caller.user_id)
        now = _now()
        row = {
            "id": uuid.uuid4(), "applet_id": applet_id, "email": email.lower(),
            "token_hash": hash_token(token), "requested_by": caller.user_id,
            "expires_at": now + ttl, "now": now,
        }  # fmt: skip
        await directory.insert_transfer(conn, row)
        uow.publish(
            OwnershipTransferRequested(
                transfer_id=row["id"],
                applet_id=applet_id,
                applet_name=access.applet["display_name"],
                email=row["email"],
                locale=owner_locale if recipient is None else recipient["locale"],
                recipient_has_account=recipient is not None,
                recipient_name=None if recipient is None else recipient["full_name"],
                owner_id=caller.user_id,
                owner_name=owner_name,
                accept_token=token,
                expires_at=row["expires_at"].isoformat(),
            ),
            subject=str(applet_id),
        )
        await uow.commit()
    return {"id": row["id"], "applet_id": applet_id, "email": row["email"],
            "status": "pending", "expires_at": row["expires_at"]}  # fmt: skip


async def _transfer_for_caller(conn: Any, token: str, caller: Principal) -> tuple[Any, Any]:
    row = await directory.transfer_by_hash(conn, hash_token(token))
    if row is None:
        raise TransferNotFound()
    if row["status"] != "pending":
        raise TransferClosed(f"the transfer is {row['status']}")
    if row["expires_at"] <= _now():
        raise TransferExpired()
    me = await directory.user(conn, caller.user_id)
    if me is None or me["deleted_at"] is not None:
        raise AccountNotKnownYet()
    if (me["email"] or "").lower() != row["email"]:
        raise OtherAddress("this transfer was offered to another address than your account's")
    return row, me


async def accept_transfer(uow: UnitOfWork, token: str, caller: Principal) -> dict[str, Any]:
    """The caller becomes the owner; the previous owner stays on as a manager."""
    async with uow:
        conn = await driver_in_transaction(uow.session)
        row, me = await _transfer_for_caller(conn, token, caller)
        applet_id, now = row["applet_id"], _now()
        applet = await store.applet_for_update(conn, applet_id)
        if applet is None:
            raise AppletNotFound()
        previous = row["requested_by"]
        for owner in await directory.owners(conn, applet_id):
            await directory.delete_role(conn, applet_id, owner, Role.owner)
            uow.publish(
                AccessRevoked(applet_id=applet_id, user_id=owner, role=Role.owner,
                              reason="ownership_transferred"),
                subject=str(applet_id),
            )  # fmt: skip
            if Role.manager not in await directory.roles_of(conn, applet_id, owner):
                await directory.grant_role(
                    conn, applet_id, owner, Role.manager, granted_by=caller.user_id, now=now
                )
                uow.publish(
                    AccessGranted(applet_id=applet_id, user_id=owner, role=Role.manager),
                    subject=str(applet_id),
                )
        await directory.grant_role(
            conn, applet_id, caller.user_id, Role.owner, granted_by=previous, now=now
        )
        await directory.settle_transfer(conn, row["id"], "accepted", caller.user_id, now)
        previous_name, previous_email, previous_locale = await _name(conn, previous)
        uow.publish(
            AccessGranted(applet_id=applet_id, user_id=caller.user_id, role=Role.owner),
            subject=str(applet_id),
        )
        uow.publish(
            OwnershipTransferred(
                applet_id=applet_id,
                applet_name=applet["display_name"],
                reason="transfer_accepted",
                previous_owner_id=previous,
                previous_owner_email=previous_email,
                previous_owner_name=previous_name,
                previous_owner_locale=previous_locale,
                new_owner_id=caller.user_id,
                new_owner_email=me["email"],
                new_owner_name=me["full_name"],
                new_owner_locale=me["locale"],
            ),
            subject=str(applet_id),
        )
        await uow.commit()
    log.info("ownership_transferred", applet_id=str(applet_id))
    return {"id": row["id"], "applet_id": applet_id, "email": row["email"],
            "status": "accepted", "expires_at": row["expires_at"]}  # fmt: skip


async def decline_transfer(uow: UnitOfWork, token: str, caller: Principal) -> dict[str, Any]:
    async with uow:
        conn = await driver_in_transaction(uow.session)
        row, _ = await _transfer_for_caller(conn, token, caller)
        await directory.settle_transfer(conn, row["id"], "declined", caller.user_id, _now())
        await uow.commit()
    return {"id": row["id"], "applet_id": row["applet_id"], "email": row["email"],
            "status": "declined", "expires_at": row["expires_at"]}  # fmt: skip
