"""MISP's feed routes, as PyMISP calls them (``add_feed``, ``feeds``, ``get_feed``,
``fetch_feed``), site admins only; and this instance's own feed (``/sync/feed/``), which a
MISP (or this service) adds as a feed of source format ``misp``."""

from __future__ import annotations

import json
import uuid
from typing import Annotated, Any

import httpx
from fastapi import APIRouter, Body, Depends, Path, Query, Request, Response

from tessera.common.deps import Client, UoW, resource
from tessera.sync.api.common import DENIED, PROBLEM, Me, SyncSettings, _me, flag
from tessera.sync.api.events import misp_routes
from tessera.sync.api.servers import _job_answer
from tessera.sync.crypto import KeyBox, UnreadableKey
from tessera.sync.remote_feed import parse_headers
from tessera.sync.service import feeds
from tessera.sync.service.feeds import InvalidFeed
from tessera.sync.viewer import Viewer

__all__ = ["export", "router"]

router = APIRouter(prefix="/sync", tags=["MISP feeds"])
export = APIRouter(prefix="/sync/feed", tags=["This instance's MISP feed"])
Keys = Annotated[KeyBox, Depends(resource(KeyBox))]
NOT_FOUND: dict[str, Any] = {"description": "no such feed", **PROBLEM}
_EXAMPLE = {
    "name": "CIRCL OSINT Feed",
    "provider": "CIRCL",
    "url": "https://www.circl.lu/doc/misp/feed-osint",
    "source_format": "misp",
    "enabled": True,
    "distribution": 3,
    "tag_id": 0,
    "fetch_every_s": 86400,
}


def _fail(field: str, message: str) -> InvalidFeed:
    return InvalidFeed(
        f"invalid: {field}",
        errors=[{"field": field, "in": "body", "type": "value_error", "message": message}],
    )


def _json_object(value: Any, field: str) -> dict[str, Any]:
    """An object, or its JSON text (MISP keeps ``rules`` and ``settings`` as text)."""
    if value in (None, ""):
        return {}
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise _fail(field, "not JSON") from None
    if not isinstance(value, dict):
        raise _fail(field, "an object")
    return value


def _int(value: Any, field: str, *, default: int | None) -> int | None:
    if value in (None, ""):
        return default
    try:
        return int(str(value))
    except ValueError:
        raise _fail(field, "a whole number") from None


def _headers(value: Any) -> str:
    """MISP's ``Name: value`` lines (an object of headers is read too), checked."""
    if isinstance(value, dict):
        value = "\n".join(f"{k}: {v}" for k, v in value.items())
    text = str(value or "").replace("\r\n", "\n").strip()
    try:
        parse_headers(text)
    except ValueError as exc:
        raise _fail("headers", str(exc)) from None
    return text


def _url(value: Any) -> str:
    url = str(value or "").strip()
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError, ValueError):
        raise _fail("url", "an http(s) URL") from None
    if parsed.scheme not in ("http", "https") or not parsed.host or parsed.userinfo:
        raise _fail("url", "an http(s) URL, without credentials (use headers)")
    return url[:1024]


def _feed_in(body: Any) -> dict[str, Any]:
    """What ``feeds/add`` takes, in MISP's spellings (``Feed`` wrapper or not)."""
    if not isinstance(body, dict):
        raise _fail("Feed", "an object")
    body = body.get("Feed", body)
    for field in ("name", "provider", "url"):
        if not str(body.get(field) or "").strip():
            raise _fail(field, "required")
    source_format = str(body.get("source_format") or "").strip().lower()
    if source_format != "misp":
        raise _fail("source_format", "only 'misp' feeds are fetched here (not freetext or csv)")
    input_source = str(body.get("input_source") or "network").strip().lower()
    if input_source == "local":
        raise _fail("input_source", "local feeds are not allowed here: 'network' only")
    distribution = _int(body.get("distribution"), "distribution", default=0)
    if distribution is None or not 0 <= distribution <= 5:
        raise _fail("distribution", "0 to 5 (5: inherit from the feed's events)")
    group = _int(body.get("sharing_group_id"), "sharing_group_id", default=None) or None
    if distribution != 4:
        group = None  # MISP's FeedsController::add
    elif group is None:
        raise _fail("sharing_group_id", "a sharing group, for distribution 4")
    every = _int(body.get("fetch_every_s"), "fetch_every_s", default=None) or None
    if every is not None and every < 60:
        raise _fail("fetch_every_s", "at least 60 seconds (or none: not scheduled)")
    rules = body.get("pull_rules") if body.get("pull_rules") else body.get("rules")
    return {
        "name": str(body["name"]).strip()[:255], "provider": str(body["provider"]).strip()[:255],
        "url": _url(body["url"]), "rules": _json_object(rules, "rules"),
        "enabled": flag(body.get("enabled")), "distribution": distribution,
        "sharing_group_id": group,
        "tag_id": _int(body.get("tag_id"), "tag_id", default=None) or None,
        "source_format": source_format, "fixed_event": flag(body.get("fixed_event")),
        "delta_merge": flag(body.get("delta_merge")), "publish": flag(body.get("publish")),
        "override_ids": flag(body.get("override_ids")),
        "lookup_visible": flag(body.get("lookup_visible")),
        "caching_enabled": flag(body.get("caching_enabled")), "input_source": "network",
        "settings": _json_object(body.get("settings"), "settings"),
        "allow_private_addresses": flag(body.get("allow_private_addresses")),
        "headers": _headers(body.get("headers")), "fetch_every_s": every,
    }  # fmt: skip


_INPUTS = ("name", "provider", "url", "rules", "enabled", "distribution", "sharing_group_id",
           "tag_id", "source_format", "fixed_event", "delta_merge", "publish", "override_ids",
           "lookup_visible", "caching_enabled", "input_source", "settings",
           "allow_private_addresses", "fetch_every_s")  # fmt: skip


def _edited(feed: dict[str, Any], body: Any, keys: KeyBox) -> dict[str, Any]:
    """What ``feeds/edit`` sets: the feed as it is with the fields sent, checked as
    ``feeds/add`` checks a feed. The headers change only when new ones are sent: not when
    they are empty, nor when they are what ``feeds/view`` shows (PyMISP's ``update_feed``
    sends back the feed it read)."""
    if not isinstance(body, dict):
        raise _fail("Feed", "an object")
    sent = body.get("Feed", body)
    if not isinstance(sent, dict):
        raise _fail("Feed", "an object")
    merged = {name: feed[name] for name in _INPUTS} | {
        k: v for k, v in sent.items() if k in (*_INPUTS, "pull_rules") and v is not None
    }
    headers = sent.get("headers")
    new_headers = headers not in (None, "") and headers != _shown_headers(feed, keys)
    merged["headers"] = headers if new_headers else ""
    wanted = _feed_in(merged)
    if not new_headers:
        del wanted["headers"]
    return wanted


def _shown_headers(feed: dict[str, Any], keys: KeyBox) -> str:
    """The feed's headers as ``feeds/view`` shows them: names, and a hint of each value."""
    if not feed["headers"]:
        return ""
    try:
        headers = parse_headers(keys.open(feed["headers"]))
    except (UnreadableKey, ValueError):  # sealed under another SYNC__SERVER_KEY
        return "(unreadable)"
    return "\n".join(f"{name}: {KeyBox.hint(value)}" for name, value in headers.items())


def _when(value: Any) -> str | None:
    return None if value is None else value.isoformat()


def _feed_out(feed: dict[str, Any], keys: KeyBox) -> dict[str, Any]:
    """A feed as MISP's ``feeds/view`` shows it (ids as strings, ``rules`` and ``settings``
    as JSON text, as PyMISP's ``MISPFeed`` reads them), never its headers' values."""
    out: dict[str, Any] = {
        "Feed": {
            "id": str(feed["id"]), "name": feed["name"], "provider": feed["provider"],
            "url": feed["url"], "rules": json.dumps(feed["rules"]), "enabled": feed["enabled"],
            "distribution": str(feed["distribution"]),
            "sharing_group_id": str(feed["sharing_group_id"] or 0),
            "tag_id": str(feed["tag_id"] or 0), "default": False,
            "source_format": feed["source_format"], "fixed_event": feed["fixed_event"],
            "delta_merge": feed["delta_merge"], "event_id": "0", "publish": feed["publish"],
            "override_ids": feed["override_ids"], "settings": json.dumps(feed["settings"]),
            "input_source": feed["input_source"], "delete_local_file": False,
            "lookup_visible": feed["lookup_visible"], "headers": _shown_headers(feed, keys),
            "caching_enabled": feed["caching_enabled"], "force_to_ids": False,
            "orgc_id": str(feed["orgc_id"] or 0), "tag_collection_id": "0",
            "cache_timestamp": False,
            "allow_private_addresses": feed["allow_private_addresses"],
            "fetch_every_s": feed["fetch_every_s"],
            "last_fetched_at": _when(feed["last_fetched_at"]),
            "org_id": str(feed["org_id"] or 0),
        },
    }  # fmt: skip
    if feed["tag_id"] is not None and feed["tag_name"] is not None:
        out["Tag"] = {"id": str(feed["tag_id"]), "name": feed["tag_name"],
                      "colour": feed["tag_colour"], "exportable": feed["tag_exportable"],
                      "hide_tag": feed["tag_hide_tag"]}  # fmt: skip
    return out


@router.post(
    "/feeds/add",
    summary="Add a MISP feed (site admins): source format `misp`, over http(s)",
    responses={403: DENIED},
)
async def add_feed(
    me: Me,
    uow: UoW,
    keys: Keys,
    body: Annotated[dict[str, Any], Body(openapi_examples={"CIRCL": {"value": _EXAMPLE}})],
) -> dict[str, Any]:
    return _feed_out(await feeds.add_feed(uow, _feed_in(body), me, keys), keys)


@router.get("/feeds/index", summary="The feeds (site admins)", responses={403: DENIED})
async def list_feeds(
    me: Me,
    uow: UoW,
    keys: Keys,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
) -> list[dict[str, Any]]:
    rows = await feeds.list_feeds(uow, me, limit=limit, offset=(page - 1) * limit)
    return [_feed_out(r, keys) for r in rows]


FeedId = Annotated[int, Path(ge=1, le=2**62)]


@misp_routes(
    router,
    "/feeds/view/{feed_id}",
    ["GET"],
    named_suffix=False,
    json_suffix=False,
    summary="One feed (site admins)",
    responses={403: DENIED, 404: NOT_FOUND},
)
async def view_feed(feed_id: FeedId, me: Me, uow: UoW, keys: Keys) -> dict[str, Any]:
    return _feed_out(await feeds.view_feed(uow, feed_id, me), keys)


@misp_routes(
    router,
    "/feeds/fetchFromFeed/{feed_id}",
    ["GET", "POST"],
    named_suffix=False,
    json_suffix=False,
    summary="Fetch the feed: answers at once with the job it started",
    responses={403: DENIED, 404: NOT_FOUND},
)
async def fetch_from_feed(feed_id: FeedId, me: Me, uow: UoW) -> dict[str, Any]:
    answer = _job_answer(await feeds.start_fetch(uow, feed_id, me), "Pull")
    return {"result": answer["message"], **answer}


@misp_routes(
    router,
    "/feeds/edit/{feed_id}",
    ["POST", "PUT"],
    named_suffix=False,
    json_suffix=False,
    summary="Change a feed (site admins): the fields sent, checked as on add",
    responses={403: DENIED, 404: NOT_FOUND},
)
async def edit_feed(
    feed_id: FeedId,
    me: Me,
    uow: UoW,
    keys: Keys,
    body: Annotated[Any, Body(openapi_examples={"daily": {"value": {"fetch_every_s": 86400}}})],
) -> dict[str, Any]:
    feed = await feeds.view_feed(uow, feed_id, me)
    return _feed_out(await feeds.edit_feed(uow, feed_id, _edited(feed, body, keys), me, keys), keys)


async def _toggle(uow: Any, keys: KeyBox, me: Viewer, feed_id: int, enable: bool) -> dict[str, Any]:
    feed = await feeds.view_feed(uow, feed_id, me)
    await feeds.edit_feed(uow, feed_id, _edited(feed, {"enabled": enable}, keys), me, keys)
    message = "Feed enabled." if enable else "Feed disabled."
    action = "enable" if enable else "disable"
    return {"name": message, "message": message, "url": f"/feeds/{action}/{feed_id}"}


@misp_routes(
    router,
    "/feeds/enable/{feed_id}",
    ["POST"],
    named_suffix=False,
    json_suffix=False,
    summary="Enable a feed (site admins): it may be fetched, and on its schedule",
    responses={403: DENIED, 404: NOT_FOUND},
)
async def enable_feed(feed_id: FeedId, me: Me, uow: UoW, keys: Keys) -> dict[str, Any]:
    return await _toggle(uow, keys, me, feed_id, True)


@misp_routes(
    router,
    "/feeds/disable/{feed_id}",
    ["POST"],
    named_suffix=False,
    json_suffix=False,
    summary="Disable a feed (site admins): neither fetched on demand nor on its schedule",
    responses={403: DENIED, 404: NOT_FOUND},
)
async def disable_feed(feed_id: FeedId, me: Me, uow: UoW, keys: Keys) -> dict[str, Any]:
    return await _toggle(uow, keys, me, feed_id, False)


@misp_routes(
    router,
    "/feeds/delete/{feed_id}",
    ["POST", "DELETE"],
    named_suffix=False,
    json_suffix=False,
    summary="Remove a feed (site admins): its jobs stay, the events it brought stay",
    responses={403: DENIED, 404: NOT_FOUND},
)
async def delete_feed(feed_id: FeedId, me: Me, uow: UoW) -> dict[str, Any]:
    await feeds.delete_feed(uow, feed_id, me)
    message = "Feed deleted."
    return {"saved": True, "success": True, "name": message, "message": message,
            "url": f"/feeds/delete/{feed_id}", "id": str(feed_id)}  # fmt: skip


@misp_routes(
    router,
    "/feeds/fetchFromAllFeeds",
    ["GET", "POST"],
    named_suffix=False,
    summary="Fetch every enabled feed: answers at once with the jobs it started",
    responses={403: DENIED},
)
async def fetch_from_all_feeds(me: Me, uow: UoW) -> dict[str, Any]:
    jobs = await feeds.start_all_fetches(uow, me)
    if not jobs:
        return {"result": "No feed enabled.", "jobs": []}
    return {
        "result": "Pull queued for background execution.",
        "jobs": [{"feed_id": str(f), "job_id": str(j), "url": f"/sync/jobs/{j}"} for f, j in jobs],
    }


# --- this instance's feed -----------------------------------------------------------------------


async def _reader(
    request: Request, uow: UoW, client: Client, settings: SyncSettings
) -> Viewer | None:
    """Anyone when ``SYNC__FEED_EXPORT_PUBLIC``; otherwise a key or token, as every MISP
    route (a MISP adding this feed sends its key in the feed's headers)."""
    if settings.feed_export_public:
        return None
    return await _me(request, uow, client, settings)


Reader = Annotated[Viewer | None, Depends(_reader)]
_UNCHANGED: dict[str, Any] = {"description": "unchanged since the ETag sent in If-None-Match"}


def _answers(description: str, media_type: str, schema: dict[str, Any]) -> dict[int | str, Any]:
    return {
        200: {"description": f"{description}; `ETag`: SHA-256 of the body",
              "content": {media_type: {"schema": schema}}},
        304: _UNCHANGED,
        403: DENIED,
    }  # fmt: skip


def _etagged(request: Request, body: bytes, media_type: str) -> Response:
    etag = feeds.etag_of(body)
    asked = {
        t.strip().removeprefix("W/") for t in request.headers.get("if-none-match", "").split(",")
    }
    if etag in asked:  # a weak ETag is what a gzipping proxy makes of ours
        return Response(status_code=304, headers={"ETag": etag})
    return Response(body, media_type=media_type, headers={"ETag": etag})


@export.get(
    "/manifest.json",
    summary="The exported events (published, distribution 3), as PyMISP's manifest",
    response_class=Response,
    responses=_answers("`{event uuid: {Orgc, Tag, info, date, ...}}`", "application/json",
                       {"type": "object"}),
)  # fmt: skip
async def manifest(request: Request, uow: UoW, reader: Reader) -> Response:
    return _etagged(request, await feeds.exported_manifest(uow), "application/json")


@export.get(
    "/hashes.csv",
    summary="MD5 of every exported value, with its event's uuid",
    response_class=Response,
    responses=_answers("`md5,event uuid` lines", "text/csv", {"type": "string"}),
)
async def hashes(request: Request, uow: UoW, reader: Reader) -> Response:
    return _etagged(request, await feeds.exported_hashes(uow), "text/csv")


@export.get(
    "/{name}",
    summary="One exported event (`<uuid>.json`), as PyMISP's `to_feed()` writes it",
    response_class=Response,
    responses={
        **_answers('`{"Event": {...}}`', "application/json", {"type": "object"}),
        404: {"description": "no such exported event", **PROBLEM},
    },
)
async def event(
    name: Annotated[str, Path(max_length=64)], request: Request, uow: UoW, reader: Reader
) -> Response:
    try:
        event_uuid = uuid.UUID(name.removesuffix(".json"))
    except ValueError:
        raise feeds.ExportedEventNotFound() from None
    body = await feeds.exported_event(uow, event_uuid)
    if body is None:
        raise feeds.ExportedEventNotFound()
    return _etagged(request, body, "application/json")
