"""Auth's HTTP routes for personal API keys; no SQL here."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Response

from tessera.auth.api.common import PROBLEM
from tessera.auth.schemas import ApiKeyCreatedOut, ApiKeyIn, ApiKeyOut
from tessera.auth.service import apikeys
from tessera.common.deps import Caller, UoW
from tessera.common.pagination import Page, Paging

__all__ = ["router"]

router = APIRouter(prefix="/auth", tags=["api keys"])


@router.post(
    "/api-keys",
    status_code=201,
    summary="Create a personal API key; the key is in this answer only",
)
async def create_api_key(body: ApiKeyIn, uow: UoW, caller: Caller) -> ApiKeyCreatedOut:
    row, key = await apikeys.create_api_key(
        uow, caller, name=body.name, expires_at=body.expires_at, allowed_cidrs=body.allowed_cidrs
    )
    return ApiKeyCreatedOut.model_validate(
        {**ApiKeyOut.model_validate(row).model_dump(), "key": key}
    )


@router.get("/api-keys", summary="The caller's API keys (never the keys)")
async def list_api_keys(uow: UoW, caller: Caller, page: Paging) -> Page[ApiKeyOut]:
    rows, total = await apikeys.list_api_keys(uow, caller, page)
    return Page.of([ApiKeyOut.model_validate(r) for r in rows], total, page)


@router.delete(
    "/api-keys/{key_id}",
    status_code=204,
    responses={404: {"description": "unknown, or another user's", **PROBLEM}},
)
async def revoke_api_key(key_id: uuid.UUID, uow: UoW, caller: Caller) -> Response:
    await apikeys.revoke_api_key(uow, caller, key_id)
    return Response(status_code=204)
