"""Auth's HTTP routes for organisations, memberships and API keys; no SQL here."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response

from tessera.auth import apikeys, organisations
from tessera.auth.schemas import (
    ApiKeyCreatedOut,
    ApiKeyIn,
    ApiKeyOut,
    MemberIn,
    MemberOut,
    OrganisationIn,
    OrganisationOut,
)
from tessera.common.db import UnitOfWork
from tessera.common.pagination import Page, Paging
from tessera.common.security import CurrentPrincipal

__all__ = ["router"]

PROBLEM: dict[str, Any] = {"content": {"application/problem+json": {}}}
router = APIRouter(prefix="/auth")


def _uow(request: Request) -> UnitOfWork:
    return request.app.state.runtime.uow()


UoW = Annotated[UnitOfWork, Depends(_uow)]


@router.post(
    "/organisations",
    status_code=201,
    tags=["organisations"],
    summary="Create an organisation; the caller becomes its admin",
    responses={409: {"description": "name taken", **PROBLEM}},
)
async def create_organisation(
    body: OrganisationIn, uow: UoW, caller: CurrentPrincipal, response: Response
) -> OrganisationOut:
    organisation = await organisations.create_organisation(uow, body.name, caller)
    response.headers["Location"] = f"/auth/organisations/{organisation.id}"
    return OrganisationOut.model_validate(organisation)


@router.get(
    "/organisations",
    tags=["organisations"],
    summary="The caller's organisations (every one for a superadmin)",
)
async def list_organisations(
    uow: UoW, caller: CurrentPrincipal, page: Paging
) -> Page[OrganisationOut]:
    rows, total = await organisations.list_organisations(uow, caller, page)
    return Page.of([OrganisationOut.model_validate(r) for r in rows], total, page)


@router.get(
    "/organisations/{organisation_id}",
    tags=["organisations"],
    responses={404: {"description": "unknown, or not a member", **PROBLEM}},
)
async def get_organisation(
    organisation_id: uuid.UUID, uow: UoW, caller: CurrentPrincipal
) -> OrganisationOut:
    return OrganisationOut.model_validate(
        await organisations.get_organisation(uow, organisation_id, caller)
    )


@router.patch(
    "/organisations/{organisation_id}",
    tags=["organisations"],
    summary="Rename (organisation admins)",
    responses={
        403: {"description": "not an admin", **PROBLEM},
        409: {"description": "name taken", **PROBLEM},
    },
)
async def rename_organisation(
    organisation_id: uuid.UUID, body: OrganisationIn, uow: UoW, caller: CurrentPrincipal
) -> OrganisationOut:
    return OrganisationOut.model_validate(
        await organisations.rename_organisation(uow, organisation_id, body.name, caller)
    )


@router.get("/organisations/{organisation_id}/members", tags=["organisations"])
async def list_members(
    organisation_id: uuid.UUID, uow: UoW, caller: CurrentPrincipal, page: Paging
) -> Page[MemberOut]:
    rows, total = await organisations.list_members(uow, organisation_id, caller, page)
    return Page.of([MemberOut.model_validate(r) for r in rows], total, page)


@router.post(
    "/organisations/{organisation_id}/members",
    status_code=201,
    tags=["organisations"],
    summary="Add a user by email, or change their role (organisation admins)",
    responses={
        403: {"description": "not an admin", **PROBLEM},
        404: {"description": "no such user", **PROBLEM},
    },
)
async def add_member(
    organisation_id: uuid.UUID, body: MemberIn, uow: UoW, caller: CurrentPrincipal
) -> MemberOut:
    member = await organisations.add_member(
        uow, organisation_id, email=body.email, role=body.role, caller=caller
    )
    return MemberOut.model_validate(member)


@router.delete(
    "/organisations/{organisation_id}/members/{user_id}",
    status_code=204,
    tags=["organisations"],
    summary="Remove a member (admins), or leave (yourself)",
    responses={409: {"description": "the last admin cannot leave", **PROBLEM}},
)
async def remove_member(
    organisation_id: uuid.UUID, user_id: uuid.UUID, uow: UoW, caller: CurrentPrincipal
) -> Response:
    await organisations.remove_member(uow, organisation_id, user_id, caller)
    return Response(status_code=204)


@router.post(
    "/api-keys",
    status_code=201,
    tags=["api keys"],
    summary="Create a personal API key; the key is in this answer only",
)
async def create_api_key(body: ApiKeyIn, uow: UoW, caller: CurrentPrincipal) -> ApiKeyCreatedOut:
    row, key = await apikeys.create_api_key(
        uow, caller, name=body.name, expires_at=body.expires_at, allowed_cidrs=body.allowed_cidrs
    )
    return ApiKeyCreatedOut.model_validate(
        {**ApiKeyOut.model_validate(row).model_dump(), "key": key}
    )


@router.get("/api-keys", tags=["api keys"], summary="The caller's API keys (never the keys)")
async def list_api_keys(uow: UoW, caller: CurrentPrincipal, page: Paging) -> Page[ApiKeyOut]:
    rows, total = await apikeys.list_api_keys(uow, caller, page)
    return Page.of([ApiKeyOut.model_validate(r) for r in rows], total, page)


@router.delete(
    "/api-keys/{key_id}",
    status_code=204,
    tags=["api keys"],
    responses={404: {"description": "unknown, or another user's", **PROBLEM}},
)
async def revoke_api_key(key_id: uuid.UUID, uow: UoW, caller: CurrentPrincipal) -> Response:
    await apikeys.revoke_api_key(uow, caller, key_id)
    return Response(status_code=204)
