"""MISP's sighting routes: ``sightings/add`` and ``sightings/listSightings`` (PyMISP's
``add_sighting()`` and ``sightings()``), ``sightings/restSearch``, and the two a pushing
server calls (``filterSightingUuidsForPush``, ``bulkSaveSightings``)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from tessera.common.deps import UoW
from tessera.sync.api.common import Me, SyncSettings
from tessera.sync.api.events import JSON_BODY, REFUSED, MispRoute, ident_of, misp_routes, read_body
from tessera.sync.service import sighting_push, sightings

__all__ = ["router"]

UUID_LIST_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {"type": "array", "items": {"type": "string", "format": "uuid"}}
            }
        },
    }
}

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


@misp_routes(
    router, "/sightings/filterSightingUuidsForPush/{event}", ["POST"],
    named_suffix=False, openapi_extra=UUID_LIST_BODY,
    summary="Which of these sighting uuids of the event (`{event}`: id or uuid) are known "
    "here; sync users",
    description="MISP's `Sighting::pushSightings` asks this before it sends an event's "
    "sightings, and sends only the others. The body is a JSON list of sighting uuids; the "
    "answer is the list of those this instance holds for that event. 404 `Event not found` "
    "when the caller does not see the event; 403 unless the caller is a sync user.",
    responses=REFUSED,
)  # fmt: skip
async def filter_sighting_uuids_for_push(
    event: str, request: Request, me: Me, uow: UoW, settings: SyncSettings
) -> JSONResponse:
    payload = await read_body(request, settings)
    return JSONResponse(await sighting_push.known_sightings(uow, me, ident_of(event), payload))


@misp_routes(
    router, "/sightings/bulkSaveSightings/{event}", ["POST"],
    named_suffix=False, openapi_extra=JSON_BODY,
    summary="Save sightings of the event's attributes (`{event}`: id or uuid), each once "
    "by its uuid; sync users and those who may sight",
    description="MISP's sighting push sends an event's sightings here (a JSON list, or "
    "`{\"Sighting\": [...]}`; each with `uuid`, `attribute_uuid`, `type`, `date_sighting`, "
    "`source`, and from a sync user `org_id` and `Organisation`). A sighting whose uuid is "
    "known here, or of an attribute the caller does not see in that event, is left out, so "
    "sending the same sightings again saves nothing. A sync user's sighting keeps the "
    "organisation it names (`org_id` 0: none); anyone else's is their organisation's. "
    "Answers `{\"saved\": true, \"success\": \"N sightings added.\"}` or `{\"saved\": "
    "false, \"success\": \"No sightings added.\"}`; 405 `Event not found or not accessible "
    "by this user.` when the caller does not see the event.",
    responses=REFUSED,
)  # fmt: skip
async def bulk_save_sightings(
    event: str, request: Request, me: Me, uow: UoW, settings: SyncSettings
) -> JSONResponse:
    payload = await read_body(request, settings)
    saved = await sighting_push.bulk_save_sightings(uow, me, ident_of(event), payload)
    return JSONResponse(saved)
