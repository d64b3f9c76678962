"""MISP's sharing-group routes (``sharing_groups/*``, also spelt ``sharingGroups/*`` as
PyMISP calls half of them): index, view, add, edit, delete, addOrg, removeOrg, addServer,
removeServer."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request, Response
from fastapi.responses import JSONResponse

from tessera.common.deps import UoW
from tessera.sync.api.common import DENIED, PROBLEM, Me, SyncSettings
from tessera.sync.api.events import REFUSED, MispRoute, misp_routes, named, read_body
from tessera.sync.service import sharing_groups

__all__ = ["router"]

router = APIRouter(prefix="/sync", tags=["MISP sharing groups"], route_class=MispRoute)
Ident = Annotated[str, Path(max_length=64, description="the group's id or uuid")]
BASE_URL = ""
"""this instance's ``SharingGroupServer`` (server 0) is shown with no url, as events show it"""
NOT_ALLOWED: dict[str, Any] = {
    "description": "MISP's MethodNotAllowedException: no such group, or not one the caller "
    "may see or change",
    **PROBLEM,
}
_GROUP_EXAMPLE: dict[str, Any] = {
    "name": "Partners",
    "releasability": "CERTs of the partnership",
    "description": "what we share with our partners",
    "roaming": False,
    "SharingGroupOrg": [{"uuid": "5f6e1a2b-3c4d-4e5f-8a9b-0c1d2e3f4a5b", "extend": False}],
    "SharingGroupServer": [{"server_id": 0, "all_orgs": False}],
}
_ORG_EXAMPLE = {"sg_id": "1", "org_id": "5f6e1a2b-3c4d-4e5f-8a9b-0c1d2e3f4a5b", "extend": False}
_SERVER_EXAMPLE = {"sg_id": "1", "server_id": "1", "all_orgs": False}


def _body_example(example: dict[str, Any]) -> dict[str, Any]:
    return {
        "requestBody": {
            "required": False,
            "content": {"application/json": {"schema": {"type": "object"}, "example": example}},
        }
    }


def _both(path: str, methods: list[str], **options: Any) -> Any:
    """Register under ``/sharing_groups`` (documented) and ``/sharingGroups`` (hidden)."""
    documented = misp_routes(router, f"/sharing_groups{path}", methods, **options)
    options = {k: v for k, v in options.items() if k != "summary"} | {"include_in_schema": False}
    hidden = misp_routes(router, f"/sharingGroups{path}", methods, **options)

    def register(endpoint: Any) -> Any:
        return hidden(documented(endpoint))

    return register


def _positional(request: Request) -> list[str]:
    """``/{a}/{b}/{c}`` after the action, as MISP's actions read them."""
    rest = request.path_params.get("named") or ""
    return [p for p in rest.split("/") if p and ":" not in p]


def _params(request: Request) -> dict[str, Any]:
    return dict(request.query_params) | named(request)


@_both(
    "/index", ["GET", "POST"],
    summary="The sharing groups the caller may see, by name (MISP's REST index: `value`, "
    "`searchorg`, `limit`/`page`; `/index/true` the inactive ones)",
    responses={403: DENIED, 400: {"description": "limit or page out of range", **PROBLEM}},
)  # fmt: skip
async def index_sharing_groups(
    request: Request,
    me: Me,
    uow: UoW,
    limit: Annotated[int, Query(ge=1, le=9999)] = 60,
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
) -> JSONResponse:
    params = _params(request)
    try:
        limit = min(max(int(params.get("limit", limit)), 1), 9999)
        page = min(max(int(params.get("page", page)), 1), 100_000)
    except ValueError:
        limit, page = 60, 1
    value = sharing_groups.clean_text(str(params.get("value") or ""))
    searchorg = sharing_groups.clean_text(str(params.get("searchorg") or ""))
    entries, total = await sharing_groups.index(
        uow, me, passive=_positional(request)[:1] == ["true"],
        value=str(value)[:255] if value else None,
        searchorg=str(searchorg)[:1024] if searchorg else None,
        limit=limit, page=page, base_url=BASE_URL,
    )  # fmt: skip
    return JSONResponse({"response": entries}, headers={"X-Result-Count": str(total)})


@_both(
    "/view/{ident}", ["GET"], named_suffix=False,
    summary="A sharing group, with its organisations and servers",
    responses={403: DENIED, 405: NOT_ALLOWED},
)  # fmt: skip
async def view_sharing_group(ident: Ident, me: Me, uow: UoW) -> JSONResponse:
    key = ident.removesuffix(".json")
    return JSONResponse(await sharing_groups.view(uow, me, key, base_url=BASE_URL))


@_both(
    "/view/{ident}", ["HEAD"], named_suffix=False,
    summary="Whether the sharing group exists and the caller may see it (200 or 404)",
    responses={403: DENIED, 404: {"description": "no such group for the caller"}},
)  # fmt: skip
async def sharing_group_exists(ident: Ident, me: Me, uow: UoW) -> Response:
    found = await sharing_groups.exists(uow, me, ident.removesuffix(".json"))
    return Response(status_code=200 if found else 404)


@_both(
    "/add", ["POST"], named_suffix=False, openapi_extra=_body_example(_GROUP_EXAMPLE),
    summary="Create a sharing group (a role with the sharing-group permission)",
    responses=REFUSED,
)  # fmt: skip
async def add_sharing_group(
    request: Request, me: Me, uow: UoW, settings: SyncSettings
) -> JSONResponse:
    body = await read_body(request, settings)
    return JSONResponse(await sharing_groups.add(uow, me, body, base_url=BASE_URL))


@_both(
    "/edit/{ident}", ["POST", "PUT"], named_suffix=False,
    openapi_extra=_body_example({"description": "now with a description",
                                 "SharingGroupOrg": [{"id": "2", "extend": True}]}),
    summary="Change a sharing group; organisations and servers listed are added",
    responses={**REFUSED, 404: {"description": "no such group", **PROBLEM}, 405: NOT_ALLOWED},
)  # fmt: skip
async def edit_sharing_group(
    ident: Ident, request: Request, me: Me, uow: UoW, settings: SyncSettings
) -> JSONResponse:
    body = await read_body(request, settings)
    key = ident.removesuffix(".json")
    return JSONResponse(await sharing_groups.edit(uow, me, key, body, base_url=BASE_URL))


@_both(
    "/delete/{ident}", ["POST", "DELETE"], named_suffix=False,
    summary="Delete a sharing group nothing uses (its owner or a site admin)",
    responses={403: REFUSED[403], 405: NOT_ALLOWED},
)  # fmt: skip
async def delete_sharing_group(ident: Ident, me: Me, uow: UoW) -> JSONResponse:
    return JSONResponse(await sharing_groups.delete(uow, me, ident.removesuffix(".json")))


def _pick(data: dict[str, Any], names: tuple[str, ...]) -> Any:
    for name in names:
        value = data.get(name)
        if value is not None and str(value).strip() != "":
            return value
    return None


async def _quick(request: Request, settings: Any, objects: tuple[str, ...]) -> tuple[Any, ...]:
    """``(group, object, flag, body)`` from the path (``/{sg}/{object}/{flag}``) or the body
    (``sg_id``/``sg_uuid``/``id``/``uuid`` and the object's names), as MISP reads them."""
    body = await read_body(request, settings)
    data: dict[str, Any] = body if isinstance(body, dict) else {}
    data = data.get("request", data) if isinstance(data.get("request"), dict) else data
    path = _positional(request)
    group = path[0] if path else _pick(data, ("sg_id", "sg_uuid", "id", "uuid"))
    target = path[1] if len(path) > 1 else _pick(data, objects)
    extra = path[2] if len(path) > 2 else None
    return group, target, extra, data


_ORG = ("org_id", "org_uuid", "org_name")
_SERVER = ("server_id", "server_url", "server_baseurl", "server_name")


@_both(
    "/addOrg", ["POST"], json_suffix=False, openapi_extra=_body_example(_ORG_EXAMPLE),
    summary="Add an organisation (id, uuid or name) to a sharing group",
    responses={**REFUSED, 405: NOT_ALLOWED},
)  # fmt: skip
async def add_org(request: Request, me: Me, uow: UoW, settings: SyncSettings) -> JSONResponse:
    group, org, extend, data = await _quick(request, settings, _ORG)
    extend = data.get("extend", extend)
    return JSONResponse(
        await sharing_groups.add_org(uow, me, group, org, extend=sharing_groups.flag(extend))
    )


@_both(
    "/removeOrg", ["POST"], json_suffix=False, openapi_extra=_body_example(_ORG_EXAMPLE),
    summary="Remove an organisation from a sharing group: what it shares is no longer theirs",
    responses={**REFUSED, 405: NOT_ALLOWED},
)  # fmt: skip
async def remove_org(request: Request, me: Me, uow: UoW, settings: SyncSettings) -> JSONResponse:
    group, org, _, _ = await _quick(request, settings, _ORG)
    return JSONResponse(await sharing_groups.remove_org(uow, me, group, org))


@_both(
    "/addServer", ["POST"], json_suffix=False, openapi_extra=_body_example(_SERVER_EXAMPLE),
    summary="Add a server (id, url or name; 0 is this instance) to a sharing group",
    responses={**REFUSED, 405: NOT_ALLOWED},
)  # fmt: skip
async def add_server(request: Request, me: Me, uow: UoW, settings: SyncSettings) -> JSONResponse:
    group, server, all_orgs, data = await _quick(request, settings, _SERVER)
    all_orgs = data.get("all_orgs", data.get("all", all_orgs))
    return JSONResponse(
        await sharing_groups.add_server(
            uow, me, group, server, all_orgs=sharing_groups.flag(all_orgs)
        )
    )


@_both(
    "/removeServer", ["POST"], json_suffix=False, openapi_extra=_body_example(_SERVER_EXAMPLE),
    summary="Remove a server from a sharing group",
    responses={**REFUSED, 405: NOT_ALLOWED},
)  # fmt: skip
async def remove_server(request: Request, me: Me, uow: UoW, settings: SyncSettings) -> JSONResponse:
    group, server, _, _ = await _quick(request, settings, _SERVER)
    return JSONResponse(await sharing_groups.remove_server(uow, me, group, server))
