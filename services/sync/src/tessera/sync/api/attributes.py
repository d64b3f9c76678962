"""MISP's attribute routes: ``attributes/add/{event}``, ``view``, ``edit`` and ``delete``,
each also with a ``.json`` suffix and CakePHP's named parameters (``/breakOnDuplicate:0``,
``/hard:1``)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from tessera.common.deps import UoW
from tessera.sync.api.common import DENIED, Me, SyncSettings, flag
from tessera.sync.api.events import (
    JSON_BODY,
    REFUSED,
    MispRoute,
    ident_of,
    misp_routes,
    named,
    read_body,
)
from tessera.sync.service import attributes

__all__ = ["router"]

router = APIRouter(prefix="/sync", tags=["MISP attributes"], route_class=MispRoute)

_ONE_OR_MANY = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": {"anyOf": [{"type": "object"},
                                                              {"type": "array"}]}}},
    }
}  # fmt: skip


@misp_routes(
    router, "/attributes/add/{ident}", ["POST"], openapi_extra=_ONE_OR_MANY,
    summary="Add one attribute or a list to an event (MISP's attributes/add)",
    responses=REFUSED,
)  # fmt: skip
async def add_attributes(
    ident: str, request: Request, me: Me, uow: UoW, settings: SyncSettings
) -> JSONResponse:
    params = dict(request.query_params) | named(request)
    break_on_duplicate = flag(params.get("breakOnDuplicate", 1))
    payload = await read_body(request, settings)
    body = await attributes.add_attributes(
        uow, me, ident_of(ident), payload, break_on_duplicate=break_on_duplicate
    )
    return JSONResponse(body)


@misp_routes(
    router, "/attributes/view/{ident}", ["GET"],
    summary="An attribute the caller may see, with its tags", responses={403: DENIED,
    404: REFUSED[404]},
)  # fmt: skip
async def view_attribute(ident: str, me: Me, uow: UoW) -> JSONResponse:
    return JSONResponse(await attributes.view_attribute(uow, me, ident_of(ident)))


@misp_routes(
    router, "/attributes/edit/{ident}", ["POST", "PUT"], openapi_extra=JSON_BODY,
    summary="Edit an attribute (MISP's attributes/edit); what the body leaves out stays",
    responses=REFUSED,
)  # fmt: skip
async def edit_attribute(
    ident: str, request: Request, me: Me, uow: UoW, settings: SyncSettings
) -> JSONResponse:
    payload = await read_body(request, settings)
    return JSONResponse(await attributes.edit_attribute(uow, me, ident_of(ident), payload))


@misp_routes(
    router, "/attributes/delete/{ident}", ["POST", "DELETE"], openapi_extra=JSON_BODY,
    summary="Delete an attribute: soft (kept for sync), hard for a site admin (`/1`, hard:1)",
    responses=REFUSED,
)  # fmt: skip
async def delete_attribute(
    ident: str, request: Request, me: Me, uow: UoW, settings: SyncSettings
) -> JSONResponse:
    rest = request.path_params.get("named") or ""
    body = await read_body(request, settings)
    hard = (
        rest.split("/")[0] == "1"
        or flag(named(request).get("hard", 0))
        or (isinstance(body, dict) and flag(body.get("hard", 0)))
    )
    return JSONResponse(await attributes.delete_attribute(uow, me, ident_of(ident), hard=hard))
