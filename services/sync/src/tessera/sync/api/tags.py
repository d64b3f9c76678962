"""MISP's tag routes: ``tags/index``, ``tags/attachTagToObject`` and
``tags/removeTagFromObject`` (PyMISP's ``tags()``, ``tag()`` and ``untag()``)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from tessera.common.deps import UoW
from tessera.sync.api.common import DENIED, Me, SyncSettings, flag
from tessera.sync.api.events import JSON_BODY, REFUSED, MispRoute, misp_routes, named, read_body
from tessera.sync.service import tags

__all__ = ["router"]

router = APIRouter(prefix="/sync", tags=["MISP tags"], route_class=MispRoute)


@misp_routes(
    router, "/tags/index", ["GET"],
    summary="Every tag, by name (searchall: a part of it), with how often the caller sees it",
    responses={403: DENIED},
)  # fmt: skip
async def index_tags(request: Request, me: Me, uow: UoW) -> JSONResponse:
    params = dict(request.query_params) | named(request)
    return JSONResponse(await tags.index_tags(uow, me, params))


def _positional(request: Request) -> list[str]:
    """``/{uuid}/{tag}[/{local}]`` after the action, as MISP's actions read them."""
    rest = request.path_params.get("named") or ""
    return [p for p in rest.split("/") if p and ":" not in p]


@misp_routes(
    router, "/tags/attachTagToObject", ["POST"], openapi_extra=JSON_BODY,
    summary='Attach tags to an event or attribute: {"uuid": ..., "tag": name or id, "local": 0|1}',
    responses=REFUSED,
)  # fmt: skip
async def attach_tag(request: Request, me: Me, uow: UoW, settings: SyncSettings) -> JSONResponse:
    body = await read_body(request, settings)
    data: dict[str, Any] = body if isinstance(body, dict) else {}
    path = _positional(request)
    uuid = path[0] if path else data.get("uuid")
    tag = path[1] if len(path) > 1 else data.get("tag")
    local = flag(path[2]) if len(path) > 2 else flag(data.get("local", 0))
    relationship = data.get("relationship_type")
    answer = await tags.attach_tags(
        uow, me, uuid, tag, local=local,
        relationship_type=str(relationship) if relationship else None,
    )  # fmt: skip
    return JSONResponse(answer)


@misp_routes(
    router, "/tags/removeTagFromObject", ["POST"], openapi_extra=JSON_BODY,
    summary='Remove a tag from an event or attribute: {"uuid": ..., "tag": name or id}',
    responses=REFUSED,
)  # fmt: skip
async def remove_tag(request: Request, me: Me, uow: UoW, settings: SyncSettings) -> JSONResponse:
    body = await read_body(request, settings)
    data: dict[str, Any] = body if isinstance(body, dict) else {}
    path = _positional(request)
    uuid = path[0] if path else data.get("uuid")
    tag = path[1] if len(path) > 1 else data.get("tag")
    return JSONResponse(await tags.remove_tag(uow, me, uuid, tag))
