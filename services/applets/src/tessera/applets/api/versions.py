"""Routes of an applet's versions: the list, one version, what changed in it."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Path, Response

from tessera.applets.api.common import FORBIDDEN, NOT_FOUND, PROBLEM, json_text
from tessera.applets.schemas import ChangesOut, VersionOut, VersionSummary
from tessera.applets.service import versions
from tessera.common.deps import Caller, UoW
from tessera.common.pagination import Page, Paging

__all__ = ["router"]

router = APIRouter(prefix="/applets", tags=["versions"])
Version = Annotated[str, Path(pattern=r"^\d{1,6}\.\d{1,6}\.\d{1,6}$", examples=["1.0.1"])]
NO_VERSION = {"description": "no such applet or version", **PROBLEM}


@router.get(
    "/{applet_id}/versions",
    summary="Every version of the applet, newest first",
    responses={403: FORBIDDEN, 404: NOT_FOUND},
)
async def list_versions(
    applet_id: uuid.UUID, uow: UoW, caller: Caller, page: Paging
) -> Page[VersionSummary]:
    rows, total = await versions.list_versions(
        uow, applet_id, caller, limit=page.limit, offset=page.offset
    )
    return Page.of([VersionSummary.model_validate(dict(r)) for r in rows], total, page)


@router.get(
    "/{applet_id}/versions/{version}",
    response_model=VersionOut,
    summary="One version, as it was published (versions never change)",
    responses={403: FORBIDDEN, 404: NO_VERSION},
)
async def get_version(applet_id: uuid.UUID, version: Version, uow: UoW, caller: Caller) -> Response:
    return json_text(await versions.get_version(uow, applet_id, version, caller))


@router.get(
    "/{applet_id}/versions/{version}/changes",
    summary="What the version changed against the previous one, as lines a manager reads",
    responses={403: FORBIDDEN, 404: NO_VERSION},
)
async def changes(applet_id: uuid.UUID, version: Version, uow: UoW, caller: Caller) -> ChangesOut:
    return ChangesOut.model_validate(await versions.changes(uow, applet_id, version, caller))
