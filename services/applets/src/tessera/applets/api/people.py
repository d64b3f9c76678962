"""Routes of who holds which role: roles, reviewers' respondents, invitations, ownership
transfers; and (``tokens``) the links the mailer sends, answered by their token."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Response

from tessera.applets.api.common import FORBIDDEN, INVALID, NOT_FOUND, PROBLEM, AppletsSettings
from tessera.applets.domain import Role
from tessera.applets.schemas import (
    InvitationIn,
    InvitationOut,
    RespondentsIn,
    RoleOut,
    TokenIn,
    TransferIn,
    TransferOut,
)
from tessera.applets.service import people
from tessera.common.deps import Caller, UoW
from tessera.common.pagination import Page, Paging

__all__ = ["router", "tokens"]

router = APIRouter(prefix="/applets", tags=["roles and invitations"])
tokens = APIRouter(prefix="/applets", tags=["links by token"])

CONFLICT: dict[str, Any] = {"description": "see `code`", **PROBLEM}
BY_TOKEN: dict[int | str, dict[str, Any]] = {
    403: {"description": "the link was sent to another address than the caller's", **PROBLEM},
    404: {"description": "no such link", **PROBLEM},
    409: {"description": "already answered, or the account is not known yet", **PROBLEM},
    410: {"description": "expired", **PROBLEM},
}


@router.get(
    "/{applet_id}/roles",
    summary="Who holds which role on the applet (owners, managers, coordinators)",
    responses={403: FORBIDDEN, 404: NOT_FOUND},
)
async def list_roles(
    applet_id: uuid.UUID,
    uow: UoW,
    caller: Caller,
    page: Paging,
    role: Annotated[Role | None, Query(description="only this role")] = None,
) -> Page[RoleOut]:
    rows, total = await people.list_roles(
        uow, applet_id, caller, role=role, limit=page.limit, offset=page.offset
    )
    return Page.of([RoleOut.model_validate(dict(r)) for r in rows], total, page)


@router.delete(
    "/{applet_id}/roles/{user_id}/{role}",
    status_code=204,
    summary="Take a role away (or leave one of your own); the owner's stays",
    responses={403: FORBIDDEN, 404: NOT_FOUND, 409: CONFLICT},
)
async def remove_role(
    applet_id: uuid.UUID, user_id: uuid.UUID, role: Role, uow: UoW, caller: Caller
) -> Response:
    await people.remove_role(uow, applet_id, user_id, role, caller)
    return Response(status_code=204)


@router.put(
    "/{applet_id}/reviewers/{user_id}/respondents",
    summary="Whose answers a reviewer reads (respondents of the applet)",
    responses={403: FORBIDDEN, 404: NOT_FOUND, 422: INVALID},
)
async def set_respondents(
    applet_id: uuid.UUID, user_id: uuid.UUID, body: RespondentsIn, uow: UoW, caller: Caller
) -> RespondentsIn:
    found = await people.set_reviewer_respondents(uow, applet_id, user_id, body.respondents, caller)
    return RespondentsIn(respondents=found)


@router.post(
    "/{applet_id}/invitations",
    status_code=201,
    summary="Invite someone by email with a role (the mailer sends the link)",
    responses={403: FORBIDDEN, 404: NOT_FOUND, 409: CONFLICT, 422: INVALID},
)
async def invite(
    applet_id: uuid.UUID, body: InvitationIn, uow: UoW, caller: Caller, settings: AppletsSettings
) -> InvitationOut:
    row = await people.invite(
        uow, applet_id, body, caller, ttl=timedelta(seconds=settings.invitation_ttl_s)
    )
    return InvitationOut.model_validate(row)


@router.get(
    "/{applet_id}/invitations",
    summary="The applet's invitations, newest first",
    responses={403: FORBIDDEN, 404: NOT_FOUND},
)
async def list_invitations(
    applet_id: uuid.UUID,
    uow: UoW,
    caller: Caller,
    page: Paging,
    status: Literal["pending", "accepted", "declined", "revoked", "expired"] | None = None,
) -> Page[InvitationOut]:
    rows, total = await people.list_invitations(
        uow, applet_id, caller, status=status, limit=page.limit, offset=page.offset
    )
    return Page.of([InvitationOut.model_validate(r) for r in rows], total, page)


@router.post(
    "/{applet_id}/invitations/{invitation_id}/resend",
    summary="Send a pending or expired invitation again, with a new link and expiry",
    responses={403: FORBIDDEN, 404: NOT_FOUND, 409: CONFLICT},
)
async def resend_invitation(
    applet_id: uuid.UUID,
    invitation_id: uuid.UUID,
    uow: UoW,
    caller: Caller,
    settings: AppletsSettings,
) -> InvitationOut:
    row = await people.resend_invitation(
        uow, applet_id, invitation_id, caller, ttl=timedelta(seconds=settings.invitation_ttl_s)
    )
    return InvitationOut.model_validate(row)


@router.delete(
    "/{applet_id}/invitations/{invitation_id}",
    status_code=204,
    summary="Withdraw a pending invitation (its link stops working)",
    responses={403: FORBIDDEN, 404: NOT_FOUND, 409: CONFLICT},
)
async def revoke_invitation(
    applet_id: uuid.UUID, invitation_id: uuid.UUID, uow: UoW, caller: Caller
) -> Response:
    await people.revoke_invitation(uow, applet_id, invitation_id, caller)
    return Response(status_code=204)


@router.post(
    "/{applet_id}/transfer",
    status_code=201,
    summary="Offer the applet to someone (owner only); it is theirs once they accept",
    responses={403: FORBIDDEN, 404: NOT_FOUND, 409: CONFLICT},
)
async def offer_transfer(
    applet_id: uuid.UUID, body: TransferIn, uow: UoW, caller: Caller, settings: AppletsSettings
) -> TransferOut:
    row = await people.offer_transfer(
        uow, applet_id, body.email, caller, ttl=timedelta(seconds=settings.transfer_ttl_s)
    )
    return TransferOut.model_validate(row)


@tokens.post(
    "/invitations/accept",
    summary="Accept an invitation (logged in with the invited address)",
    responses=BY_TOKEN,
)
async def accept_invitation(body: TokenIn, uow: UoW, caller: Caller) -> InvitationOut:
    return InvitationOut.model_validate(await people.accept_invitation(uow, body.token, caller))


@tokens.post(
    "/invitations/decline",
    summary="Decline an invitation (logged in with the invited address)",
    responses=BY_TOKEN,
)
async def decline_invitation(body: TokenIn, uow: UoW, caller: Caller) -> InvitationOut:
    return InvitationOut.model_validate(await people.decline_invitation(uow, body.token, caller))


@tokens.post(
    "/transfers/accept",
    summary="Accept an applet's ownership (logged in with the address it was offered to)",
    responses=BY_TOKEN,
)
async def accept_transfer(body: TokenIn, uow: UoW, caller: Caller) -> TransferOut:
    return TransferOut.model_validate(await people.accept_transfer(uow, body.token, caller))


@tokens.post(
    "/transfers/decline",
    summary="Decline an applet's ownership",
    responses=BY_TOKEN,
)
async def decline_transfer(body: TokenIn, uow: UoW, caller: Caller) -> TransferOut:
    return TransferOut.model_validate(await people.decline_transfer(uow, body.token, caller))
