"""MISP's object routes: ``objects/add/{event}``, ``view`` (and ``HEAD``), ``edit`` and
``delete``, and ``objectReferences/add``, ``view`` and ``delete``, each also with a ``.json``
suffix and CakePHP's named parameters (``/breakOnDuplicate:1``, ``/hard:1``)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from tessera.common.deps import UoW
from tessera.sync.api.common import DENIED, Me, SyncSettings, flag
from tessera.sync.api.events import REFUSED, MispRoute, ident_of, misp_routes, named, read_body
from tessera.sync.service import objects, references

__all__ = ["router"]

router = APIRouter(prefix="/sync", tags=["MISP objects"], route_class=MispRoute)

_DOMAIN_IP = {
    "Object": {
        "name": "domain-ip", "meta-category": "network",
        "description": "A domain/hostname and IP address seen as a tuple in a specific time frame.",
        "template_uuid": "43b3b146-77eb-4931-b4cc-b66c60f28734", "template_version": "11",
        "distribution": "5", "comment": "C2 of the phishing wave",
        "Attribute": [
            {"object_relation": "domain", "type": "domain", "value": "evil.example"},
            {"object_relation": "ip", "type": "ip-dst", "value": "198.51.100.7"},
        ],
    }
}  # fmt: skip
_EDIT = {
    "Object": {
        "comment": "C2, still active",
        "Attribute": [
            {"uuid": "<uuid of an attribute of the object>", "object_relation": "domain",
             "type": "domain", "value": "evil.example", "comment": "changed"},
            {"object_relation": "ip", "type": "ip-dst", "value": "198.51.100.8"},
        ],
    }
}  # fmt: skip
_REFERENCE = {
    "object_uuid": "<uuid of the source object>",
    "referenced_uuid": "<uuid of an object or attribute of the same event>",
    "relationship_type": "resolves-to",
    "comment": "",
}


def _body(example: dict[str, Any], name: str) -> dict[str, Any]:
    return {
        "requestBody": {
            "required": False,
            "content": {"application/json": {
                "schema": {"type": "object"}, "examples": {name: {"value": example}},
            }},
        }
    }  # fmt: skip


_HARD = {
    "requestBody": {
        "required": False,
        "content": {"application/json": {
            "schema": {"type": "object"}, "examples": {"hard": {"value": {"hard": 1}}},
        }},
    }
}  # fmt: skip


def _positional(request: Request) -> list[str]:
    """The path's segments after the route's own that are no named parameters (MISP's
    positional arguments: ``objects/add/{event}/{template}/{version}``, ``delete/{id}/1``)."""
    rest = request.path_params.get("named") or ""
    return [part for part in rest.split("/") if part and ":" not in part]


async def _hard(request: Request, settings: SyncSettings) -> bool:
    body = await read_body(request, settings)
    positional = _positional(request)
    return (
        (bool(positional) and flag(positional[0]))
        or flag(named(request).get("hard", 0))
        or (isinstance(body, dict) and flag(body.get("hard", 0)))
    )


@misp_routes(
    router, "/objects/add/{ident}", ["POST"], openapi_extra=_body(_DOMAIN_IP, "domain-ip"),
    summary="Add an object with its attributes to an event (MISP's objects/add); checked "
    "against its template when this instance knows it; `/breakOnDuplicate:1` refuses a copy "
    "of a live object",
    responses=REFUSED,
)  # fmt: skip
async def add_object(
    ident: str, request: Request, me: Me, uow: UoW, settings: SyncSettings
) -> JSONResponse:
    params = dict(request.query_params) | named(request)
    positional = _positional(request)
    template = (positional[0], positional[1] if len(positional) > 1 else None) \
        if positional else None  # fmt: skip
    payload = await read_body(request, settings)
    body = await objects.add_object(
        uow, me, ident_of(ident), payload,
        break_on_duplicate=flag(params.get("breakOnDuplicate", 0)), template=template,
    )  # fmt: skip
    return JSONResponse(body)


@misp_routes(
    router, "/objects/view/{ident}", ["GET"],
    summary="An object the caller may see: its event, attributes (with tags) and references",
    responses={403: DENIED, 404: REFUSED[404]},
)  # fmt: skip
async def view_object(ident: str, me: Me, uow: UoW) -> JSONResponse:
    return JSONResponse(await objects.view_object(uow, me, ident_of(ident)))


@router.head(
    "/objects/view/{ident}",
    summary="Whether the caller sees the object (200) or not (404), without a body",
    responses={403: DENIED, 404: {"description": "no such object, or not one the caller may see"}},
)
async def object_exists(ident: str, me: Me, uow: UoW) -> Response:
    found = await objects.object_exists(uow, me, ident_of(ident))
    return Response(status_code=200 if found else 404)


@misp_routes(
    router, "/objects/edit/{ident}", ["POST", "PUT"], openapi_extra=_body(_EDIT, "edit"),
    summary="Edit an object (MISP's objects/edit): attributes matched by uuid are changed, "
    "others added, those left out deleted (soft); answered as objects/view",
    responses=REFUSED,
)  # fmt: skip
async def edit_object(
    ident: str, request: Request, me: Me, uow: UoW, settings: SyncSettings
) -> JSONResponse:
    payload = await read_body(request, settings)
    return JSONResponse(await objects.edit_object(uow, me, ident_of(ident), payload))


@misp_routes(
    router, "/objects/delete/{ident}", ["POST", "DELETE"], openapi_extra=_HARD,
    summary="Delete an object with its attributes: soft (kept for sync), or hard "
    "(`/1`, `hard:1`, body `{\"hard\": 1}`)",
    responses=REFUSED,
)  # fmt: skip
async def delete_object(
    ident: str, request: Request, me: Me, uow: UoW, settings: SyncSettings
) -> JSONResponse:
    hard = await _hard(request, settings)
    return JSONResponse(await objects.delete_object(uow, me, ident_of(ident), hard=hard))


_ADD_REFERENCE = dict(
    openapi_extra=_body(_REFERENCE, "resolves-to"),
    summary="Add a reference from an object (in the path, or the body's `object_uuid`) to an "
    "object or attribute of its event (MISP's objectReferences/add)",
    responses=REFUSED,
)  # fmt: skip


@misp_routes(router, "/objectReferences/add", ["POST"], named_suffix=False,
             aliases=["/object_references/add"], **_ADD_REFERENCE)  # fmt: skip
async def add_reference(request: Request, me: Me, uow: UoW, settings: SyncSettings) -> JSONResponse:
    payload = await read_body(request, settings)
    return JSONResponse(await references.add_reference(uow, me, None, payload))


@misp_routes(router, "/objectReferences/add/{ident}", ["POST"],
             aliases=["/object_references/add/{ident}"], **_ADD_REFERENCE)  # fmt: skip
async def add_reference_to(
    ident: str, request: Request, me: Me, uow: UoW, settings: SyncSettings
) -> JSONResponse:
    payload = await read_body(request, settings)
    return JSONResponse(await references.add_reference(uow, me, ident_of(ident), payload))


@misp_routes(
    router, "/objectReferences/view/{ident}", ["GET"],
    aliases=["/object_references/view/{ident}"],
    summary="An object reference, when the caller may see its object",
    responses={403: DENIED, 404: REFUSED[404]},
)  # fmt: skip
async def view_reference(ident: str, me: Me, uow: UoW) -> JSONResponse:
    return JSONResponse(await references.view_reference(uow, me, ident_of(ident)))


@misp_routes(
    router, "/objectReferences/delete/{ident}", ["POST", "DELETE"], openapi_extra=_HARD,
    aliases=["/object_references/delete/{ident}"],
    summary="Delete an object reference: soft (kept for sync), or hard (`/true`, `/1`, "
    "`hard:1`, body `{\"hard\": 1}`)",
    responses=REFUSED,
)  # fmt: skip
async def delete_reference(
    ident: str, request: Request, me: Me, uow: UoW, settings: SyncSettings
) -> JSONResponse:
    hard = await _hard(request, settings)
    return JSONResponse(await references.delete_reference(uow, me, ident_of(ident), hard=hard))
