"""Reading a MISP feed over http(s), as MISP's ``Feed`` model does, through the kernel's
SSRF-safe client: ``manifest.json`` (with the ETag of the last fetch) and one ``<uuid>.json``.
The feed's own headers (MISP's ``Name: value`` lines: a key, often) go with every request
and are dropped when a redirect leaves the feed's origin."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import anyio
import httpx

from tessera.common.fetch import FetchPolicy, FetchStream, SafeClient
from tessera.sync.remote import MAX_EVENT_BYTES, RemoteError

__all__ = ["FeedManifest", "RemoteFeed", "parse_headers"]

_RESERVED = frozenset({"commit", "misp-version", "misp-uuid", "user-agent", "host",
                       "content-length", "transfer-encoding", "if-none-match"})  # fmt: skip
_TOKEN = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")


def parse_headers(text: str) -> dict[str, str]:
    """MISP's feed ``headers``: one ``Name: value`` per line; the headers MISP sets itself
    (``User-Agent``, ``MISP-version``...) cannot be replaced. Raises ValueError naming the
    line that is no header."""
    found: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        name, sep, value = line.partition(":")
        name, value = name.strip(), value.strip()
        if not sep or not _TOKEN.match(name) or not value:
            raise ValueError(f"line {number} is not a 'Name: value' header")
        if name.lower() not in _RESERVED:
            found[name] = value
    return found


@dataclass(frozen=True)
class FeedManifest:
    """``manifest.json``: ``{event uuid: {timestamp, Orgc, Tag, info...}}``, None when not
    modified since ``etag``; the ETag to send next time; the bytes read."""

    entries: dict[str, Any] | None
    etag: str | None
    bytes: int


class RemoteFeed:
    """One feed: its URL (the folder holding ``manifest.json``), headers and address policy."""

    def __init__(
        self,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        allow_private: bool = False,
        timeout_s: float = 60.0,
    ) -> None:
        self.base = url.rstrip("/")
        parsed = httpx.URL(self.base)
        ports = {80, 443, 8080, 8443}
        if parsed.port is not None:
            ports.add(parsed.port)
        extra = dict(headers or {})
        self._client = SafeClient(
            FetchPolicy(
                allow_private=allow_private,
                ports=frozenset(ports),
                read_timeout_s=timeout_s,
                total_timeout_s=max(timeout_s, 600.0),
                max_bytes=MAX_EVENT_BYTES,
            ),
            headers={
                "Accept": "application/json, text/plain, text/*",
                "User-Agent": "Tessera sync (MISP compatible)",
                **extra,
            },
            secret_headers=tuple(extra),
        )

    async def __aenter__(self) -> RemoteFeed:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._client.aclose()

    async def manifest(self, *, etag: str | None) -> FeedManifest:
        headers = {"If-None-Match": etag} if etag else {}
        response = await self._client.get(f"{self.base}/manifest.json", headers=headers)
        if response.status == 304 and etag:
            return FeedManifest(None, etag, 0)
        if not response.ok:
            raise RemoteError(f"manifest.json: HTTP {response.status}", response.status)
        try:
            found = await anyio.to_thread.run_sync(response.json)
        except ValueError as exc:
            raise RemoteError("manifest.json: the answer is not JSON", response.status) from exc
        if not isinstance(found, dict):
            raise RemoteError("manifest.json: not an object of events by uuid", response.status)
        return FeedManifest(found, response.headers.get("etag"), len(response.body))

    @asynccontextmanager
    async def event(self, uuid: str) -> AsyncIterator[FetchStream]:
        """``<uuid>.json`` as a stream of bytes (large events are parsed as they come)."""
        async with self._client.stream("GET", f"{self.base}/{uuid}.json") as stream:
            if stream.status != 200:
                raise RemoteError(f"{uuid}.json: HTTP {stream.status}", stream.status)
            yield stream
