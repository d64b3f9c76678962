"""MISP's sighting routes: ``sightings/add`` and ``sightings/listSightings`` (PyMISP's
``add_sighting()`` and ``sightings()``)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from tessera.common.deps import UoW
from tessera.sync.api.common import Me, SyncSettings
from tessera.sync.api.events import JSON_BODY, REFUSED, MispRoute, ident_of, misp_routes, read_body
from tessera.sync.service import sightings

__all__ = ["router"]

router = APIRouter(prefix="/sync", tags=["MISP sightings"], route_class=MispRoute)


def _positional(request: Request) -> list[str]:
    rest = request.path_params.get("named") or ""
    return [p for p in rest.split("/") if p and ":" not in p]


@misp_routes(
    router, "/sightings/add", ["POST"], openapi_extra=JSON_BODY,
    summary="Sight an attribute (`/{id|uuid}`, or `uuid`/`id` in the body), or every "
    "attribute the caller sees with `value`",
    responses=REFUSED,
)  # fmt: skip
async def add_sighting(request: Request, me: Me, uow: UoW, settings: SyncSettings) -> JSONResponse:
    path = _positional(request)
    payload = await read_body(request, settings)
    ident = ident_of(path[0]) if path else None
    return JSONResponse(await sightings.add_sightings(uow, me, ident, payload))


@misp_routes(
    router, "/sightings/listSightings", ["GET", "POST"], openapi_extra=JSON_BODY,
    summary="The sightings of an attribute or an event "
    "(`/{id}/{attribute|event}[/{org}]`, or `id`, `context`, `org_id` in the body)",
    responses=REFUSED,
)  # fmt: skip
async def list_sightings(
    request: Request, me: Me, uow: UoW, settings: SyncSettings
) -> JSONResponse:
    path = _positional(request)
    body = await read_body(request, settings) if request.method == "POST" else None
    data: dict[str, Any] = body if isinstance(body, dict) else {}
    ident = data.get("id", path[0] if path else None)
    context = str(data.get("context", path[1] if len(path) > 1 else "attribute"))
    org = data.get("org_id", path[2] if len(path) > 2 else None)
    ident = ident_of(str(ident)) if ident is not None else None
    return JSONResponse(await sightings.list_sightings(uow, me, ident, context, org))


@misp_routes(
    router, "/sightings/restSearch", ["POST"], openapi_extra=JSON_BODY,
    summary="Sightings of events or attributes (`/{event|attribute}`, `id` or `uuid`), "
    "`last` (0: all), `from`/`to`, `type`, `source`, `org_id`, `includeUuid`; JSON only",
    responses=REFUSED,
)  # fmt: skip
async def search_sightings(
    request: Request, me: Me, uow: UoW, settings: SyncSettings
) -> JSONResponse:
    path = _positional(request)
    body = await read_body(request, settings)
    filters: dict[str, Any] = body if isinstance(body, dict) else {}
    if isinstance(filters.get("request"), dict):
        filters = filters["request"]
    context = path[0] if path else None
    return JSONResponse(await sightings.search_sightings(uow, me, context, filters))
