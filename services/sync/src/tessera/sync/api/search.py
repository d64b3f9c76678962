"""MISP's ``events/restSearch`` and ``attributes/restSearch`` (PyMISP's ``search()``): the
filters in a JSON body (POST), or as CakePHP's URL parameters (``/restSearch/csv``,
``/value:x``); the answer, JSON or CSV, streamed as it is read."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse

from tessera.common.db import UnitOfWork
from tessera.common.deps import UoW
from tessera.sync.api.common import DENIED, PROBLEM, Me, SyncSettings
from tessera.sync.api.events import JSON_BODY, MispRoute, misp_routes, named, read_body
from tessera.sync.search import Scope
from tessera.sync.service import search
from tessera.sync.settings import Settings
from tessera.sync.viewer import Viewer

__all__ = ["router"]

router = APIRouter(prefix="/sync", tags=["MISP search"], route_class=MispRoute)

FOUND: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "what matches among what the caller may see, streamed; "
        "`X-Result-Count`: how many, `limit` and `page` aside",
        "content": {
            "application/json": {"schema": {"type": "object"}},
            "text/csv": {"schema": {"type": "string"}},
        },
    },
    400: {"description": "no filters, a filter with an invalid value (named in `errors`), "
          "or a body that is no JSON", **PROBLEM},
    403: DENIED,
}  # fmt: skip
FILTERS = (
    "`value`, `type`, `category`, `object_relation`, `tags` (`!x` excludes), `org`, "
    "`eventid`, `uuid`, `eventinfo`, `threat_level_id`, `from`/`to`/`date`, `timestamp`, "
    "`publish_timestamp`/`last`, `to_ids`, `published`, `deleted`, `limit`/`page`; "
    "`returnFormat` json or csv"
)


def _positional(request: Request) -> list[str]:
    rest = request.path_params.get("named") or ""
    return [part for part in rest.split("/") if part and ":" not in part]


async def _answer(
    request: Request, *, me: Viewer, uow: UnitOfWork, settings: Settings, scope: Scope
) -> StreamingResponse:
    body = await read_body(request, settings) if request.method == "POST" else None
    params = search.harvest(request.method, body, positional=_positional(request),
                            named=named(request), scope=scope)  # fmt: skip
    found = await search.search(uow, me, params, scope=scope)
    fmt = found.filters.return_format
    headers = {
        "X-Result-Count": str(found.total),
        "X-Export-Module-Used": fmt,
        "X-Response-Format": fmt,
        "X-Skipped-Elements-Count": "0",
    }
    if found.filename:
        headers["Content-Disposition"] = f'attachment; filename="{found.filename}"'
    return StreamingResponse(found.chunks, media_type=found.media_type, headers=headers)


@misp_routes(
    router, "/events/restSearch", ["GET", "POST"], openapi_extra=JSON_BODY,
    summary="Events the caller may see matching MISP's filters, as events/view shows them "
    "(`{\"response\": [...]}`) or as CSV of their attributes: " + FILTERS,
    responses=FOUND,
)  # fmt: skip
async def search_events(
    request: Request, me: Me, uow: UoW, settings: SyncSettings
) -> StreamingResponse:
    return await _answer(request, me=me, uow=uow, settings=settings, scope="events")


@misp_routes(
    router, "/attributes/restSearch", ["GET", "POST"], openapi_extra=JSON_BODY,
    summary="Attributes the caller may see matching MISP's filters "
    "(`{\"response\": {\"Attribute\": [...]}}`, or CSV): " + FILTERS,
    responses=FOUND,
)  # fmt: skip
async def search_attributes(
    request: Request, me: Me, uow: UoW, settings: SyncSettings
) -> StreamingResponse:
    return await _answer(request, me=me, uow=uow, settings=settings, scope="attributes")
