"""Talking to a remote MISP (or Tessera) server as MISP's own sync does, through the kernel's
SSRF-safe client: its version, who we are there, its minimal event index (with ETag), one
event, and the push side (which of ours it lacks, add, edit; which of an event's sightings it
has, and the sightings it lacks)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx

from tessera.common.fetch import FetchPolicy, FetchResponse, FetchStream, SafeClient

__all__ = ["Remote", "RemoteError", "RemoteIndex"]

MAX_EVENT_BYTES = 1024 * 1024 * 1024
"""what one answer may weigh (an event of a million attributes is ~400 MB)"""


class RemoteError(Exception):
    """The remote answered, but not as a MISP server does (its status and why)."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class RemoteIndex:
    """The remote's minimal index: one entry per event (None when unchanged since
    ``etag``), and the ETag to send next time."""

    entries: list[dict[str, Any]] | None
    etag: str | None
    bytes: int


class Remote:
    """One remote server: its URL (MISP's base, ending with ``/``), key and fetch policy."""

    def __init__(
        self,
        url: str,
        authkey: str,
        *,
        allow_private: bool = False,
        verify_tls: bool = True,
        timeout_s: float = 60.0,
    ) -> None:
        self.base = url if url.endswith("/") else f"{url}/"
        parsed = httpx.URL(self.base)
        # the web's ports, and the one the server entry names (its admin's choice); a
        # redirect elsewhere is refused
        ports = {80, 443, 8080, 8443}
        if parsed.port is not None:
            ports.add(parsed.port)
        self._client = SafeClient(
            FetchPolicy(
                allow_private=allow_private,
                ports=frozenset(ports),
                verify_tls=verify_tls,
                read_timeout_s=timeout_s,
                total_timeout_s=max(timeout_s, 600.0),
                max_bytes=MAX_EVENT_BYTES,
            ),
            headers={
                "Authorization": authkey,
                "Accept": "application/json",
                "Content-Type": "application/json",
                "User-Agent": "Tessera sync (MISP compatible)",
            },
            secret_headers=("Authorization",),
        )

    async def __aenter__(self) -> Remote:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._client.aclose()

    def _url(self, path: str) -> str:
        return self.base + path.lstrip("/")

    @staticmethod
    def _json(response: FetchResponse, what: str) -> Any:
        if not response.ok:
            raise RemoteError(f"{what}: HTTP {response.status}", response.status)
        try:
            return response.json()
        except ValueError as exc:
            raise RemoteError(f"{what}: the answer is not JSON", response.status) from exc

    async def version(self) -> dict[str, Any]:
        found = self._json(await self._client.get(self._url("servers/getVersion")), "getVersion")
        if not isinstance(found, dict) or "version" not in found:
            raise RemoteError("getVersion: no version in the answer")
        return found

    async def me(self) -> dict[str, Any]:
        found = self._json(await self._client.get(self._url("users/view/me")), "users/view/me")
        if not isinstance(found, dict) or "User" not in found:
            raise RemoteError("users/view/me: no User in the answer")
        return found

    async def index(self, *, etag: str | None, filters: Mapping[str, Any]) -> RemoteIndex:
        """``events/index`` in its minimal form (``id, timestamp, sighting_timestamp,
        published, uuid, orgc_uuid``): what MISP's pull reads before downloading anything."""
        # MISP's puller sends an empty ETag the first time: a MISP answers with one only then
        headers = {"If-None-Match": etag or '""'}
        response = await self._client.post(
            self._url("events/index"),
            content=json.dumps({"minimal": 1, **filters}).encode(),
            headers=headers,
        )
        if response.status == 304:
            return RemoteIndex(None, etag, 0)
        found = self._json(response, "events/index")
        if isinstance(found, dict) and "response" in found:
            found = found["response"]
        if not isinstance(found, list):
            raise RemoteError("events/index: the answer is not a list")
        return RemoteIndex(found, response.headers.get("etag"), len(response.body))

    @asynccontextmanager
    async def event(self, uuid: str) -> AsyncIterator[FetchStream]:
        """``events/view/{uuid}`` as a stream of bytes (large events are parsed as they
        come); deleted parts included, as MISP's pull asks for them."""
        path = (
            f"events/view/{uuid}/deleted[]:0/deleted[]:1/excludeGalaxy:1/includeEventCorrelations:0"
        )
        async with self._client.stream("GET", self._url(path)) as stream:
            if stream.status != 200:
                raise RemoteError(f"events/view/{uuid}: HTTP {stream.status}", stream.status)
            yield stream

    async def missing(self, events: Sequence[Mapping[str, Any]]) -> list[str]:
        """``events/filterEventIdsForPush``: the uuids (of ``{uuid, timestamp}``) the remote
        has not, or has older."""
        response = await self._client.post(
            self._url("events/filterEventIdsForPush"),
            content=json.dumps([{"Event": dict(e)} for e in events]).encode(),
        )
        found = self._json(response, "events/filterEventIdsForPush")
        if not isinstance(found, list):
            raise RemoteError("events/filterEventIdsForPush: the answer is not a list")
        return [str(u) for u in found]

    async def send(
        self,
        event: Mapping[str, Any] | bytes,
        *,
        uuid: str,
        edit: bool,
        signature: str | None = None,
    ) -> FetchResponse:
        """``events/add`` (or ``events/edit/{uuid}``) of the event (or its JSON as signed),
        with a protected event's ``x-pgp-signature``: MISP's answers are the caller's to read
        (404 with ``Location`` on add: it exists; 403 "not newer" on edit: fine)."""
        path = f"events/edit/{uuid}" if edit else "events/add"
        content = event if isinstance(event, bytes) else json.dumps(event).encode()
        headers = {"x-pgp-signature": signature} if signature else None
        return await self._client.post(self._url(path), content=content, headers=headers)

    async def known_sightings(self, event_uuid: str, uuids: Sequence[str]) -> list[str]:
        """``sightings/filterSightingUuidsForPush/{event}``: which of the event's sighting
        ``uuids`` the remote has already."""
        response = await self._client.post(
            self._url(f"sightings/filterSightingUuidsForPush/{event_uuid}"),
            content=json.dumps(list(uuids)).encode(),
        )
        found = self._json(response, "sightings/filterSightingUuidsForPush")
        if not isinstance(found, list):
            raise RemoteError("sightings/filterSightingUuidsForPush: the answer is not a list")
        return [str(u) for u in found]

    async def save_sightings(self, event_uuid: str, sightings: Sequence[Mapping[str, Any]]) -> Any:
        """``sightings/bulkSaveSightings/{event}``: the remote keeps those it lacks (by uuid)
        of the attributes it has; its answer (``{"saved": ..., "success": ...}``)."""
        response = await self._client.post(
            self._url(f"sightings/bulkSaveSightings/{event_uuid}"),
            content=json.dumps(list(sightings)).encode(),
        )
        return self._json(response, "sightings/bulkSaveSightings")
