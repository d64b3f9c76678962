"""MISP's blocklists, as PyMISP calls them: ``event_blocklists``, ``add_event_blocklist``,
``update_event_blocklist``, ``delete_event_blocklist`` and the same for organisations
(``eventBlocklists/*``, ``orgBlocklists/*``)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Path, Query

from tessera.common.deps import UoW
from tessera.sync.api.common import DENIED, PROBLEM, Me, SyncSettings
from tessera.sync.api.events import misp_routes
from tessera.sync.service import blocklists
from tessera.sync.store.blocklists import Blocklist

__all__ = ["router"]

router = APIRouter(prefix="/sync", tags=["MISP blocklists"])
NOT_FOUND: dict[str, Any] = {"description": "no such entry", **PROBLEM}
Ident = Annotated[str, Path(max_length=64, description="the entry's id, or the listed uuid")]
_ADD_EXAMPLES: dict[str, Any] = {
    "events": {"value": {"uuids": ["5f6e1a2b-3c4d-4e5f-8a9b-0c1d2e3f4a5b"],
                         "comment": "false positives", "event_info": "Scan of ..."}},
    "organisations": {"value": {"uuids": ["5f6e1a2b-3c4d-4e5f-8a9b-0c1d2e3f4a5b"],
                                "comment": "no longer shared with", "org_name": "Example"}},
}  # fmt: skip


def _body(kind: Blocklist, body: dict[str, Any]) -> dict[str, Any]:
    """MISP's spellings: ``{"request": ...}``, ``{"EventBlocklist": ...}`` or the fields."""
    body = body.get("request", body)
    inner = body.get(kind.model, body) if isinstance(body, dict) else body
    return inner if isinstance(inner, dict) else {}


def _routes(kind: Blocklist, noun: str) -> None:
    base = f"/{kind.controller}"

    async def index(
        me: Me,
        uow: UoW,
        settings: SyncSettings,
        limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
        page: Annotated[int, Query(ge=1, le=100_000)] = 1,
    ) -> list[dict[str, Any]]:
        return await blocklists.listed(
            uow, kind, me, host_org_uuid=settings.host_org_uuid,
            limit=limit, offset=(page - 1) * limit,
        )  # fmt: skip

    async def add(
        me: Me,
        uow: UoW,
        settings: SyncSettings,
        body: Annotated[dict[str, Any], Body(openapi_examples=_ADD_EXAMPLES)],
    ) -> dict[str, Any]:
        return await blocklists.add(
            uow, kind, me, _body(kind, body), host_org_uuid=settings.host_org_uuid
        )

    async def edit(
        ident: Ident, me: Me, uow: UoW, settings: SyncSettings, body: Annotated[Any, Body()]
    ) -> dict[str, Any]:
        return await blocklists.edit(
            uow, kind, me, ident, _body(kind, body), host_org_uuid=settings.host_org_uuid
        )

    async def delete(ident: Ident, me: Me, uow: UoW, settings: SyncSettings) -> dict[str, Any]:
        return await blocklists.delete(uow, kind, me, ident, host_org_uuid=settings.host_org_uuid)

    for endpoint in (index, add, edit, delete):  # one OpenAPI operation id per route
        endpoint.__name__ = f"{kind.controller}_{endpoint.__name__}"
    routes: list[tuple[Any, str, list[str], bool, str, dict[int | str, Any]]] = [
        (index, "index", ["GET", "POST"], True, f"The {noun} blocklist, newest first", {}),
        (add, "add", ["POST"], True, f"List {noun} uuids: what they name never comes in",
         {400: {"description": "no uuids", **PROBLEM}}),
        (edit, "edit/{ident}", ["POST", "PUT"], False, f"Change a {noun} blocklist entry's notes",
         {404: NOT_FOUND}),
        (delete, "delete/{ident}", ["POST", "DELETE"], False, f"Take a {noun} off the blocklist",
         {404: NOT_FOUND}),
    ]  # fmt: skip
    for route, path, methods, json_suffix, summary, responses in routes:
        register = misp_routes(
            router, f"{base}/{path}", methods, named_suffix=False, json_suffix=json_suffix,
            summary=summary, responses={403: DENIED, **responses},
        )  # fmt: skip
        register(route)


_routes(blocklists.EVENTS, "event")
_routes(blocklists.ORGS, "organisation")
