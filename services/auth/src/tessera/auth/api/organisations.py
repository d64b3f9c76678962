"""Auth's HTTP routes for organisations and memberships; no SQL here."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter, Response

from tessera.auth.api.common import PROBLEM
from tessera.auth.schemas import MemberIn, MemberOut, OrganisationIn, OrganisationOut
from tessera.auth.service import organisations
from tessera.common.deps import Caller, UoW
from tessera.common.pagination import Page, Paging

__all__ = ["router"]

NOT_VISIBLE: dict[str, Any] = {"description": "unknown organisation, or not a member", **PROBLEM}
NOT_ADMIN: dict[str, Any] = {"description": "not an admin of the organisation", **PROBLEM}
router = APIRouter(prefix="/auth", tags=["organisations"])


@router.post(
    "/organisations",
    status_code=201,
    summary="Create an organisation; the caller becomes its admin",
    responses={409: {"description": "name taken", **PROBLEM}},
)
async def create_organisation(
    body: OrganisationIn, uow: UoW, caller: Caller, response: Response
) -> OrganisationOut:
    organisation = await organisations.create_organisation(uow, body.name, caller)
    response.headers["Location"] = f"/auth/organisations/{organisation.id}"
    return OrganisationOut.model_validate(organisation)


@router.get(
    "/organisations",
    summary="The caller's organisations (every one for a superadmin)",
)
async def list_organisations(uow: UoW, caller: Caller, page: Paging) -> Page[OrganisationOut]:
    rows, total = await organisations.list_organisations(uow, caller, page)
    return Page.of([OrganisationOut.model_validate(r) for r in rows], total, page)


@router.get(
    "/organisations/{organisation_id}",
    responses={404: NOT_VISIBLE},
)
async def get_organisation(organisation_id: uuid.UUID, uow: UoW, caller: Caller) -> OrganisationOut:
    return OrganisationOut.model_validate(
        await organisations.get_organisation(uow, organisation_id, caller)
    )


@router.patch(
    "/organisations/{organisation_id}",
    summary="Rename (organisation admins)",
    responses={
        403: NOT_ADMIN,
        404: NOT_VISIBLE,
        409: {"description": "name taken", **PROBLEM},
    },
)
async def rename_organisation(
    organisation_id: uuid.UUID, body: OrganisationIn, uow: UoW, caller: Caller
) -> OrganisationOut:
    return OrganisationOut.model_validate(
        await organisations.rename_organisation(uow, organisation_id, body.name, caller)
    )


@router.get(
    "/organisations/{organisation_id}/members",
    summary="The members of an organisation (its members)",
    responses={404: NOT_VISIBLE},
)
async def list_members(
    organisation_id: uuid.UUID, uow: UoW, caller: Caller, page: Paging
) -> Page[MemberOut]:
    rows, total = await organisations.list_members(uow, organisation_id, caller, page)
    return Page.of([MemberOut.model_validate(r) for r in rows], total, page)


@router.post(
    "/organisations/{organisation_id}/members",
    status_code=201,
    summary="Add a user by email, or change their role (organisation admins)",
    responses={
        403: NOT_ADMIN,
        404: {"description": "organisation unknown to you, or no such user", **PROBLEM},
        409: {"description": "the last admin cannot be demoted", **PROBLEM},
    },
)
async def add_member(
    organisation_id: uuid.UUID, body: MemberIn, uow: UoW, caller: Caller
) -> MemberOut:
    member = await organisations.add_member(
        uow, organisation_id, email=body.email, role=body.role, caller=caller
    )
    return MemberOut.model_validate(member)


@router.delete(
    "/organisations/{organisation_id}/members/{user_id}",
    status_code=204,
    summary="Remove a member (admins), or leave (yourself)",
    responses={
        403: NOT_ADMIN,
        404: {"description": "organisation unknown to you, or the user is no member", **PROBLEM},
        409: {"description": "the last admin cannot leave", **PROBLEM},
    },
)
async def remove_member(
    organisation_id: uuid.UUID, user_id: uuid.UUID, uow: UoW, caller: Caller
) -> Response:
    await organisations.remove_member(uow, organisation_id, user_id, caller)
    return Response(status_code=204)
