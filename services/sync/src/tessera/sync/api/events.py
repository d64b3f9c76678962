"""MISP's event routes: ``events/add``, ``view``, ``edit``, ``delete``, ``publish``,
``unpublish``, ``protect``, ``unprotect`` and ``index``, each also with a ``.json`` suffix
and CakePHP's named parameters (``/metadata:1``), and MISP's REST resource aliases
(``GET /events/{id}``...).

Also what the other MISP route modules share: :class:`MispRoute` (which answers
``saveFailResponse``'s shape), :func:`misp_routes` (one handler under a path, its ``.json``
twin and its named parameters), :func:`read_body`.
"""

from __future__ import annotations

import hashlib
import json
import zlib
from collections.abc import Callable, Coroutine, Iterable
from typing import Annotated, Any

from anyio import to_thread
from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from starlette.convertors import Convertor, register_url_convertor

from tessera.common.deps import UoW, resource
from tessera.common.http import problem_response
from tessera.sync.api.common import DENIED, PROBLEM, Me, SyncSettings, flag, named_params
from tessera.sync.service import event_index, events, protection
from tessera.sync.service.problems import InvalidJson, SaveFailed

__all__ = [
    "JSON_BODY",
    "REFUSED",
    "MispRoute",
    "ident_of",
    "misp_routes",
    "named",
    "parse_body",
    "raw_body",
    "read_body",
    "router",
]

Endpoint = Callable[..., Coroutine[Any, Any, Any]]
Keys = Annotated[protection.Keyring, Depends(resource(protection.Keyring))]

REFUSED: dict[int | str, dict[str, Any]] = {
    400: {"description": "the body is no JSON", **PROBLEM},
    403: {"description": "no valid key, a role without the permission, or MISP's "
          "saveFailResponse (`saved: false`, `errors`)", **PROBLEM},
    404: {"description": "not found, or not one the caller may see", **PROBLEM},
    405: {"description": "MISP's MethodNotAllowedException (a protected event whose "
          "`x-pgp-signature` is missing or does not verify, among others)", **PROBLEM},
}  # fmt: skip
SIGNATURE_HEADER: dict[str, Any] = {
    "parameters": [{
        "name": "x-pgp-signature", "in": "header", "required": False,
        "schema": {"type": "string"},
        "description": "a protected event's OpenPGP detached signature (base64) of the body "
        "without its whitespace; required from a sync user (not a site admin) for a "
        "protected event, checked against the keys the event here trusts, or those it lists "
        "when it is new",
    }],
}  # fmt: skip
JSON_BODY: dict[str, Any] = {
    "requestBody": {
        "required": False,
        "content": {"application/json": {"schema": {"type": "object"}}},
    }
}


class MispRoute(APIRoute):
    """An ``APIRoute`` whose :class:`SaveFailed` answers as MISP's ``saveFailResponse``:
    the problem document with ``saved: false``, ``name``, ``message``, ``url`` and MISP's
    ``errors`` as they are (a message, or ``{field: [messages]}``)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            try:
                return await handler(request)
            except SaveFailed as failed:
                problem = problem_response(
                    request, status=failed.status, code=failed.code, title=failed.title
                )
                body = json.loads(problem.body) | failed.misp_body()
                return JSONResponse(body, status_code=failed.status, media_type=problem.media_type)

        return route


def misp_routes(
    router: APIRouter,
    path: str,
    methods: list[str],
    *,
    named_suffix: bool = True,
    json_suffix: bool = True,
    aliases: Iterable[str] = (),
    **options: Any,
) -> Callable[[Endpoint], Endpoint]:
    """Register one endpoint under ``path`` (documented) and, undocumented, ``path.json``,
    ``path/{named}`` (CakePHP's ``/key:value`` parameters, read with :func:`named`) and
    ``aliases``."""

    def register(endpoint: Endpoint) -> Endpoint:
        for method in methods:  # one route each: one OpenAPI operation id each
            router.add_api_route(path, endpoint, methods=[method], **options)
        hidden = {**options, "include_in_schema": False}
        hidden.pop("summary", None)
        extra = [*aliases]
        if json_suffix and not path.endswith("}"):
            extra.append(f"{path}.json")
        if named_suffix:
            extra.append(path + "/{named:path}")
        for other in extra:
            router.add_api_route(other, endpoint, methods=methods, **hidden)
        return endpoint

    return register


def named(request: Request) -> dict[str, Any]:
    """CakePHP's named parameters of the request's path (``/deleted:1/noSightings:1``)."""
    return named_params(request.path_params.get("named"))


def ident_of(raw: str) -> str:
    """An id or uuid as MISP reads it from a path: ``12.json`` is ``12``."""
    return raw.removesuffix(".json").strip()


async def read_body(request: Request, settings: Any) -> Any:
    """The request's JSON (None when empty), gzip or deflate content encoding undone within
    the service's body limit (MISP servers compress what they push to a server that asks for
    it: ``request_encoding`` in ``servers/getVersion``)."""
    return await parse_body(await raw_body(request, settings))


async def raw_body(request: Request, settings: Any) -> bytes:
    """The request's body with its content encoding undone (what a signature covers)."""
    raw = await request.body()
    encoding = request.headers.get("content-encoding", "").strip().lower()
    if encoding in ("gzip", "deflate") and raw:
        limit = settings.http.max_body_bytes
        inflater = zlib.decompressobj(wbits=31 if encoding == "gzip" else 15)
        try:
            raw = inflater.decompress(raw, limit + 1)
        except zlib.error:
            raise InvalidJson(title="The request body could not be decompressed.") from None
        if len(raw) > limit or inflater.unconsumed_tail:
            raise InvalidJson(title="The request body is too large once decompressed.")
    return raw


async def parse_body(raw: bytes) -> Any:
    """:func:`raw_body` read as JSON (None when empty)."""
    if not raw.strip():
        return None
    try:
        if len(raw) < 1_000_000:
            return json.loads(raw)
        return await to_thread.run_sync(json.loads, raw)  # CPU-bound: off the event loop
    except (ValueError, UnicodeDecodeError):
        raise InvalidJson() from None


def _deleted(value: Any) -> int:
    """``events/view``'s ``deleted``: 0 live parts, 1 all of them, 2 only the deleted ones
    (``[0, 1]`` is 1, ``[1]`` is 2, ``true`` is 1, anything else is 2, as MISP reads it)."""
    if isinstance(value, list | tuple):
        kinds = {flag(v) for v in value}
        return 1 if kinds == {False, True} else (2 if kinds == {True} else 0)
    text = str(value).strip().lower()
    if text in ("0", "false", "", "none"):
        return 0
    return 1 if text in ("1", "true") else 2


router = APIRouter(prefix="/sync", tags=["MISP events"], route_class=MispRoute)


@misp_routes(
    router, "/events/add", ["POST"], aliases=["/events"],
    openapi_extra=JSON_BODY | SIGNATURE_HEADER,
    summary="Add an event (MISP's events/add): answered as events/view shows it",
    responses=REFUSED,
)  # fmt: skip
async def add_event(
    request: Request, me: Me, uow: UoW, settings: SyncSettings, keys: Keys
) -> JSONResponse:
    raw = await raw_body(request, settings)
    payload = await parse_body(raw)
    metadata = flag(named(request).get("metadata", request.query_params.get("metadata", 0)))
    signed = events.Signed(raw, request.headers.get("x-pgp-signature"), keys)
    answer = await events.add_event(uow, me, payload, metadata=metadata, signed=signed)
    return JSONResponse(answer.body())


@misp_routes(
    router, "/events/view/{ident}", ["GET", "POST"], openapi_extra=JSON_BODY,
    summary="An event with what the caller may see of it (MISP's events/view); a protected "
    "one with this instance's signature of the body in `x-pgp-signature`",
    responses={403: DENIED, 404: REFUSED[404], 400: REFUSED[400]},
)  # fmt: skip
async def view_event(
    ident: str, request: Request, me: Me, uow: UoW, settings: SyncSettings, keys: Keys
) -> Response:
    params = named(request) | dict(request.query_params)
    body = await read_body(request, settings) if request.method == "POST" else None
    if isinstance(body, dict):
        params |= {k: v for k, v in body.items() if k in ("deleted", "extended")}
    options = events.ViewOptions(
        deleted=_deleted(params.get("deleted", 0)),
        sightings=not flag(params.get("noSightings", 0)),
        exclude_local_tags=flag(params["excludeLocalTags"]) if "excludeLocalTags" in params
        else None,
    )  # fmt: skip
    found = await events.view_event(uow, me, ident_of(ident), options)
    if not found["Event"].get("protected"):
        return JSONResponse(found)
    content = json.dumps(found, ensure_ascii=False, separators=(",", ":")).encode()
    signature = await protection.sign_body(uow, keys, content)
    return Response(content, media_type="application/json", headers={"x-pgp-signature": signature})


@router.head(
    "/events/view/{ident}",
    summary="Whether the caller sees the event (200) or not (404), without a body",
    responses={403: DENIED, 404: {"description": "no such event, or not one the caller may see"}},
)
async def event_exists(ident: str, me: Me, uow: UoW) -> Response:
    found = await events.event_exists(uow, me, ident_of(ident))
    return Response(status_code=200 if found else 404)


@misp_routes(
    router, "/events/edit/{ident}", ["POST", "PUT"], openapi_extra=JSON_BODY | SIGNATURE_HEADER,
    summary="Edit an event (MISP's events/edit): parts merged by uuid, answered as events/view",
    responses=REFUSED,
)  # fmt: skip
async def edit_event(
    ident: str, request: Request, me: Me, uow: UoW, settings: SyncSettings, keys: Keys
) -> JSONResponse:
    raw = await raw_body(request, settings)
    payload = await parse_body(raw)
    metadata = flag(named(request).get("metadata", request.query_params.get("metadata", 0)))
    signed = events.Signed(raw, request.headers.get("x-pgp-signature"), keys)
    answer = await events.edit_event(
        uow, me, ident_of(ident), payload, metadata=metadata, signed=signed
    )
    return JSONResponse(answer.body())


@misp_routes(
    router, "/events/filterEventIdsForPush", ["POST"], openapi_extra=JSON_BODY,
    summary="Which of a pushing server's events (uuid, timestamp) it should send (sync users)",
    responses=REFUSED,
)  # fmt: skip
async def filter_for_push(
    request: Request, me: Me, uow: UoW, settings: SyncSettings
) -> JSONResponse:
    payload = await read_body(request, settings)
    return JSONResponse(await events.filter_for_push(uow, me, payload))


@misp_routes(
    router, "/events/delete/{ident}", ["POST", "DELETE"],
    summary="Delete an event; its uuid is blocklisted so that no pull brings it back",
    responses=REFUSED,
)  # fmt: skip
async def delete_event(ident: str, me: Me, uow: UoW) -> JSONResponse:
    return JSONResponse(await events.delete_event(uow, me, ident_of(ident)))


@misp_routes(
    router, "/events/publish/{ident}", ["POST"],
    summary="Publish an event: a push job for each server with push on that takes it",
    responses=REFUSED,
)  # fmt: skip
async def publish_event(ident: str, me: Me, uow: UoW) -> JSONResponse:
    return JSONResponse(await events.publish_event(uow, me, ident_of(ident)))


@misp_routes(
    router, "/events/unpublish/{ident}", ["POST"],
    summary="Unpublish an event", responses=REFUSED,
)  # fmt: skip
async def unpublish_event(ident: str, me: Me, uow: UoW) -> JSONResponse:
    return JSONResponse(await events.unpublish_event(uow, me, ident_of(ident)))


@misp_routes(
    router, "/events/protect/{ident}", ["POST"],
    summary="Protect an event: from then on it travels signed by a key it lists (this "
    "instance's is added)",
    responses=REFUSED,
)  # fmt: skip
async def protect_event(ident: str, me: Me, uow: UoW, keys: Keys) -> JSONResponse:
    return JSONResponse(
        await events.set_protected(uow, me, ident_of(ident), protected=True, keys=keys)
    )


@misp_routes(
    router, "/events/unprotect/{ident}", ["POST"],
    summary="Unprotect an event: it travels unsigned again",
    responses=REFUSED,
)  # fmt: skip
async def unprotect_event(ident: str, me: Me, uow: UoW, keys: Keys) -> JSONResponse:
    return JSONResponse(
        await events.set_protected(uow, me, ident_of(ident), protected=False, keys=keys)
    )


@misp_routes(
    router, "/events/index", ["GET", "POST"], openapi_extra=JSON_BODY,
    summary="The events the caller may see, filtered and paginated as MISP's events/index",
    responses={304: {"description": "unchanged since the ETag sent in If-None-Match"},
               **REFUSED},
)  # fmt: skip
async def index_events(request: Request, me: Me, uow: UoW, settings: SyncSettings) -> Response:
    body = await read_body(request, settings) if request.method == "POST" else None
    params = event_index.read_parameters(
        dict(request.query_params), named(request), body if isinstance(body, dict) else {}
    )
    found = await event_index.index_events(uow, me, params)
    content = json.dumps(found.entries, ensure_ascii=False, separators=(",", ":")).encode()
    etag = f'"{hashlib.sha256(content).hexdigest()}"'
    headers = {"ETag": etag, "X-Result-Count": str(found.total)}
    if _matches(request.headers.get("if-none-match"), etag):
        return Response(status_code=304, headers=headers)
    return Response(content, media_type="application/json", headers=headers)


def _matches(header: str | None, etag: str) -> bool:
    if not header:
        return False
    tags = [t.strip().removeprefix("W/") for t in header.split(",")]
    return "*" in tags or etag in tags


class _EventIdent(Convertor[str]):
    """An event's id or uuid (with MISP's optional ``.json``), so that ``/events/{ident}``
    never shadows ``/events/index`` or another module's ``/events/restSearch``."""

    regex = (
        "(?:[0-9]+|[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})"
        "(?:\\.json)?"
    )

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("misp_event", _EventIdent())

# MISP's REST resources (Router::mapResources): GET, PUT/POST, DELETE /events/{id}
for methods, endpoint in (
    (["GET"], view_event),
    (["POST", "PUT"], edit_event),
    (["DELETE"], delete_event),
):
    router.add_api_route("/events/{ident:misp_event}", endpoint, methods=methods,
                         include_in_schema=False)  # fmt: skip
router.add_api_route("/events", index_events, methods=["GET"], include_in_schema=False)
