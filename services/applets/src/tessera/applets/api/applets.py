"""Routes of the applet document: create, read, replace, patch, delete, duplicate, list,
publish and conceal, the public link."""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Path, Query, Response

from tessera.applets.api.common import FORBIDDEN, INVALID, NOT_FOUND, PROBLEM, json_text
from tessera.applets.document import AppletContent, AppletCreate, AppletPatch
from tessera.applets.examples import example_applet
from tessera.applets.schemas import AppletOut, AppletSummary, DuplicateIn, PublicLinkOut
from tessera.applets.service import content
from tessera.common.deps import Caller, UoW
from tessera.common.pagination import Page, Paging

__all__ = ["router"]

router = APIRouter(prefix="/applets", tags=["applets"])

_EXAMPLE_ORG = "7b0c9a52-55a4-4c43-9a55-2b8f3a6f7d10"
_CREATE_EXAMPLES = {
    "every response type": {
        "summary": "An activity with an item of every response type, a second one, a flow",
        "value": example_applet(_EXAMPLE_ORG),
    }
}
_REPLACE_EXAMPLES = {
    "every response type": {
        "summary": "The whole content (what GET answers may be sent back as it is)",
        "value": {k: v for k, v in example_applet().items()},
    }
}
CONCEALED: dict[str, Any] = {"description": "a respondent, and the applet is concealed", **PROBLEM}


def _located(written: content.Written, status_code: int) -> Response:
    return json_text(
        written.document,
        status_code,
        {"Location": f"/applets/{written.applet_id}", "ETag": f'"{written.version}"'},
    )


@router.post(
    "",
    status_code=201,
    response_model=AppletOut,
    summary="Create an applet (the caller owns it): version 1.0.0",
    responses={
        403: {"description": "not a member of the organisation", **PROBLEM},
        422: INVALID,
    },
)
async def create_applet(
    body: Annotated[AppletCreate, Body(openapi_examples=_CREATE_EXAMPLES)],
    uow: UoW,
    caller: Caller,
) -> Response:
    return _located(await content.create_applet(uow, body, caller), 201)


@router.get(
    "",
    summary="The applets the caller holds a role on or administers, searched and paginated",
)
async def list_applets(
    uow: UoW,
    caller: Caller,
    page: Paging,
    name: Annotated[
        str | None, Query(min_length=1, max_length=200, description="part of the name")
    ] = None,
    organisation_id: uuid.UUID | None = None,
    role: Annotated[
        Literal["owner", "manager", "coordinator", "editor", "reviewer", "respondent"] | None,
        Query(description="only those where the caller holds this role"),
    ] = None,
) -> Page[AppletSummary]:
    rows, total = await content.list_applets(
        uow, caller, name=name, organisation_id=organisation_id, role=role,
        limit=page.limit, offset=page.offset,
    )  # fmt: skip
    return Page.of([AppletSummary.model_validate(r) for r in rows], total, page)


@router.get(
    "/public/{token}",
    response_model=AppletOut,
    summary="The applet behind a public link, as respondents see it (no login)",
    responses={404: {"description": "no published applet behind this link", **PROBLEM}},
)
async def applet_by_link(
    token: Annotated[str, Path(min_length=20, max_length=200)], uow: UoW
) -> Response:
    return json_text(await content.public_applet(uow, token))


@router.get(
    "/{applet_id}",
    response_model=AppletOut,
    summary="The applet: all of it for staff; what is not hidden for a respondent",
    responses={403: CONCEALED, 404: NOT_FOUND},
)
async def get_applet(applet_id: uuid.UUID, uow: UoW, caller: Caller) -> Response:
    return json_text(await content.get_applet(uow, applet_id, caller))


@router.put(
    "/{applet_id}",
    response_model=AppletOut,
    summary="Replace the whole content: a new version (none when nothing changed)",
    responses={
        403: FORBIDDEN,
        404: NOT_FOUND,
        422: INVALID,
        409: {"description": "the encryption key is fixed once answers may exist", **PROBLEM},
    },
)
async def replace_applet(
    applet_id: uuid.UUID,
    body: Annotated[AppletContent, Body(openapi_examples=_REPLACE_EXAMPLES)],
    uow: UoW,
    caller: Caller,
) -> Response:
    return _located(await content.replace_applet(uow, applet_id, body, caller), 200)


@router.patch(
    "/{applet_id}",
    response_model=AppletOut,
    summary="Change the applet's own fields: a new version with the same activities",
    responses={
        403: FORBIDDEN,
        404: NOT_FOUND,
        422: INVALID,
        409: {"description": "the encryption key is fixed once answers may exist", **PROBLEM},
    },
)
async def patch_applet(
    applet_id: uuid.UUID,
    body: Annotated[
        AppletPatch,
        Body(openapi_examples={"rename": {"value": {"display_name": "Evening wellbeing"}}}),
    ],
    uow: UoW,
    caller: Caller,
) -> Response:
    return _located(await content.patch_applet(uow, applet_id, body, caller), 200)


@router.delete(
    "/{applet_id}",
    status_code=204,
    summary="Delete the applet (its versions stay for the answers given to them)",
    responses={403: FORBIDDEN, 404: NOT_FOUND},
)
async def delete_applet(applet_id: uuid.UUID, uow: UoW, caller: Caller) -> Response:
    await content.delete_applet(uow, applet_id, caller)
    return Response(status_code=204)


@router.post(
    "/{applet_id}/duplicate",
    status_code=201,
    response_model=AppletOut,
    summary="A copy in the same organisation, owned by the caller (no encryption key)",
    responses={403: FORBIDDEN, 404: NOT_FOUND},
)
async def duplicate_applet(
    applet_id: uuid.UUID, uow: UoW, caller: Caller, body: DuplicateIn | None = None
) -> Response:
    written = await content.duplicate_applet(
        uow, applet_id, caller, display_name=None if body is None else body.display_name
    )
    return _located(written, 201)


@router.post(
    "/{applet_id}/publish",
    response_model=AppletOut,
    summary="Show the applet to its respondents (not a new version)",
    responses={403: FORBIDDEN, 404: NOT_FOUND},
)
async def publish(applet_id: uuid.UUID, uow: UoW, caller: Caller) -> Response:
    return json_text(await content.set_published(uow, applet_id, caller, published=True))


@router.post(
    "/{applet_id}/conceal",
    response_model=AppletOut,
    summary="Hide the applet from its respondents (not a new version)",
    responses={403: FORBIDDEN, 404: NOT_FOUND},
)
async def conceal(applet_id: uuid.UUID, uow: UoW, caller: Caller) -> Response:
    return json_text(await content.set_published(uow, applet_id, caller, published=False))


@router.post(
    "/{applet_id}/public-link",
    status_code=201,
    summary="A new link for anonymous respondents (an earlier one stops working)",
    responses={403: FORBIDDEN, 404: NOT_FOUND},
)
async def create_public_link(applet_id: uuid.UUID, uow: UoW, caller: Caller) -> PublicLinkOut:
    token = await content.set_public_link(uow, applet_id, caller, enabled=True)
    assert token is not None
    return PublicLinkOut(token=token, path=f"/applets/public/{token}")


@router.delete(
    "/{applet_id}/public-link",
    status_code=204,
    summary="Stop the public link",
    responses={403: FORBIDDEN, 404: NOT_FOUND},
)
async def delete_public_link(applet_id: uuid.UUID, uow: UoW, caller: Caller) -> Response:
    await content.set_public_link(uow, applet_id, caller, enabled=False)
    return Response(status_code=204)
