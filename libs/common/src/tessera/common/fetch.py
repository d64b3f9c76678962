"""The one client for remote fetches (sync servers, feeds): SSRF-safe by construction.

What it promises, for every request and every redirect hop:

- Only the policy's schemes (``http``/``https``) and ports; no userinfo in URLs.
- Every address a name resolves to is vetted, and the request is refused if *any* of them is
  forbidden (a name answering with a public and a private address is a rebinding set-up,
  not a fail-over). Loopback, private, link-local, shared (CGNAT), unique-local and
  site-local addresses are allowed only by ``FetchPolicy(allow_private=True)``;
  unspecified, multicast, reserved, broadcast, ``0.0.0.0/8`` and cloud metadata endpoints
  never are. IPv6 forms that carry an IPv4 address (mapped, NAT64, 6to4) are judged by it.
- The vetting happens inside the connection pool's network backend, right where the socket
  is opened, and the socket goes to the vetted address itself: the name is resolved once
  per connection, so a second DNS answer (rebinding) is never used. URLs keep their host
  name, so ``Host``, SNI and certificate checks use the name, connections are pooled per
  name, and httpx's OpenTelemetry spans show the real URL.
- Redirects are followed here, not by httpx, up to ``max_redirects``, each hop re-checked;
  ``Authorization``, ``Proxy-Authorization``, ``Cookie`` and the caller's secret headers
  are dropped once a hop leaves the first URL's origin.
- Connect/read timeouts per operation and a total deadline per request (all hops and the
  body); bodies are cut off at ``max_bytes`` as decoded (gzip/deflate are undone here, a
  bounded piece at a time, so a compression bomb cannot balloon), and refused up front
  when ``Content-Length`` announces more.
- Error messages name the URL without userinfo, query or fragment, and never a header.

One :class:`SafeClient` holds one policy and one connection pool: make one per remote
server entry (or per distinct policy), never share a pool between policies.
"""

from __future__ import annotations

import asyncio
import functools
import http.cookiejar
import ipaddress
import json as jsonlib
import os
import socket
import ssl
import zlib
from collections.abc import (
    AsyncGenerator,
    AsyncIterator,
    Awaitable,
    Callable,
    Iterable,
    Iterator,
    Mapping,
)
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpcore
import httpx

__all__ = [
    "FetchError",
    "FetchFailed",
    "FetchPolicy",
    "FetchRefused",
    "FetchResponse",
    "FetchStream",
    "FetchTimeout",
    "ForbiddenAddress",
    "ForbiddenPort",
    "ForbiddenScheme",
    "ForbiddenUrl",
    "Resolver",
    "ResponseTooLarge",
    "SafeClient",
    "TooManyRedirects",
    "check_address",
    "check_url",
    "redact",
    "system_resolver",
]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], Awaitable[Iterable[str]]]
"""``(host, port) -> addresses``: the seam tests replace to map names to any address."""

_DEFAULT_PORTS = frozenset({80, 443, 8080, 8443})
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_SECRET_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie"})
_BODY_HEADERS = frozenset({"content-type", "content-length", "transfer-encoding"})
_PIECE = 64 * 1024  # most bytes one decompression step may produce
_METADATA = tuple(
    ipaddress.ip_network(n)
    for n in (
        "169.254.169.254/32",  # AWS, GCP, Azure, OpenStack, Oracle
        "169.254.170.2/32",  # AWS ECS task credentials
        "169.254.170.23/32",  # AWS EKS pod identity
        "100.100.100.200/32",  # Alibaba Cloud
        "fd00:ec2::254/128",  # AWS IPv6
        "fd00:ec2::23/128",  # AWS EKS pod identity IPv6
    )
)
_THIS_NETWORK = ipaddress.ip_network("0.0.0.0/8")
_SHARED = ipaddress.ip_network("100.64.0.0/10")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_UNIQUE_LOCAL = ipaddress.ip_network("fc00::/7")


class FetchError(Exception):
    """Base of every error this module raises; ``str()`` is safe to log."""

    def __init__(self, reason: str, url: str = "") -> None:
        super().__init__(reason, url)
        self.reason = reason
        self.url = url

    def __str__(self) -> str:
        return f"{self.reason} ({self.url})" if self.url else self.reason


class FetchRefused(FetchError):
    """The policy forbids this fetch; nothing (more) was sent or read."""


class ForbiddenUrl(FetchRefused):
    """Malformed, without a host, or carrying userinfo."""


class ForbiddenScheme(FetchRefused):
    pass


class ForbiddenPort(FetchRefused):
    pass


class ForbiddenAddress(FetchRefused):
    pass


class TooManyRedirects(FetchRefused):
    pass


class ResponseTooLarge(FetchRefused):
    pass


class FetchFailed(FetchError):
    """The network failed us (refused connection, TLS, protocol error, bad encoding)."""


class FetchTimeout(FetchFailed):
    """A connect, read or write timeout, or the request's total deadline, passed."""


@dataclass(frozen=True)
class FetchPolicy:
    """What one remote (a server entry, a feed) may be fetched with.

    ``ports=None`` means 80, 443, 8080 and 8443; an explicit set replaces them.
    ``verify_tls`` is True (public CAs), False, or the path of a CA bundle (file or dir).
    """

    allow_private: bool = False
    schemes: tuple[str, ...] = ("https", "http")
    ports: frozenset[int] | None = None
    max_redirects: int = 3
    connect_timeout_s: float = 10.0
    read_timeout_s: float = 30.0
    total_timeout_s: float = 300.0
    max_bytes: int = 50 * 1024 * 1024
    verify_tls: bool | str = True

    def __post_init__(self) -> None:
        if not self.schemes or not set(self.schemes) <= {"http", "https"}:
            raise ValueError("schemes must be a non-empty subset of ('https', 'http')")
        if self.ports is not None and not all(0 < p < 65536 for p in self.ports):
            raise ValueError("ports must be TCP ports")
        if self.max_redirects < 0 or self.max_bytes <= 0:
            raise ValueError("max_redirects must be >= 0 and max_bytes > 0")
        timeouts = (self.connect_timeout_s, self.read_timeout_s, self.total_timeout_s)
        if min(timeouts) <= 0:
            raise ValueError("timeouts must be positive")

    def allows_port(self, scheme: str, port: int) -> bool:
        if self.ports is not None:
            return port in self.ports
        return port in _DEFAULT_PORTS or port == {"http": 80, "https": 443}.get(scheme)


def redact(url: httpx.URL | str) -> str:
    """The URL as it may appear in logs: no userinfo, query or fragment."""
    try:
        u = httpx.URL(url)
        return str(u.copy_with(userinfo=b"", query=None, fragment=None))
    except (httpx.InvalidURL, TypeError, ValueError):
        return "<unparsable URL>"


def _judge(ip: IPAddress) -> tuple[str, bool]:
    """``(class, allowed_with_allow_private)``; class ``"public"`` is always allowed."""
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = ip.ipv4_mapped or ip.sixtofour
        if embedded is None and ip in _NAT64:
            embedded = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if embedded is not None:
            return _judge(embedded)
    if ip.is_unspecified:
        return "unspecified", False
    if ip.is_loopback:
        return "loopback", True
    if ip.is_multicast:
        return "multicast", False
    if any(ip in net for net in _METADATA):
        return "cloud metadata", False
    if ip in _THIS_NETWORK:
        return "this-network", False
    if ip.is_reserved:  # 240/4 with the broadcast address; unassigned IPv6 blocks
        return "reserved", False
    if ip.is_link_local:
        return "link-local", True
    if ip in _SHARED:
        return "shared (CGNAT)", True
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.is_site_local:
            return "site-local", True
        if ip in _UNIQUE_LOCAL:
            return "unique-local", True
    if ip.is_private or not ip.is_global:
        return "private", True
    return "public", True


def check_address(address: str | IPAddress, *, allow_private: bool = False) -> IPAddress:
    """The address, if a policy with ``allow_private`` may connect to it; else ForbiddenAddress."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        raise ForbiddenAddress(f"{address!r} is not an IP address") from None
    kind, private_ok = _judge(ip)
    if kind != "public" and not (allow_private and private_ok):
        raise ForbiddenAddress(f"{ip} is {kind}")
    return ip


def check_url(url: httpx.URL | str, policy: FetchPolicy) -> httpx.URL:
    """The URL, if its form is allowed (scheme, port, no userinfo); addresses are vetted
    when connecting. Also useful to validate a server entry when it is saved."""
    try:
        u = httpx.URL(url)
    except (httpx.InvalidURL, TypeError, ValueError):
        raise ForbiddenUrl("malformed URL", redact(url)) from None
    shown = redact(u)
    if u.scheme not in policy.schemes:
        raise ForbiddenScheme(f"scheme {u.scheme or '(none)'!r} is not allowed", shown)
    if not u.host:
        raise ForbiddenUrl("URL has no host", shown)
    if u.userinfo:
        raise ForbiddenUrl("credentials in URLs are not allowed", shown)
    port = u.port or (443 if u.scheme == "https" else 80)
    if not policy.allows_port(u.scheme, port):
        raise ForbiddenPort(f"port {port} is not allowed", shown)
    return u.copy_with(fragment=None)


async def system_resolver(host: str, port: int) -> list[str]:
    """Every address the system resolver gives for ``host``, in its order, once each."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


class _PinningBackend(httpcore.AsyncNetworkBackend):
    """Resolves, vets every address, and connects to a vetted address: never to a name."""

    def __init__(self, policy: FetchPolicy, resolver: Resolver) -> None:
        self._policy = policy
        self._resolver = resolver
        self._inner = httpcore.AnyIOBackend()

    async def _vetted(self, host: str, port: int) -> list[IPAddress]:
        allow_private = self._policy.allow_private
        try:
            literal = ipaddress.ip_address(host)
        except ValueError:
            literal = None  # a name: resolve it
        if literal is not None:
            return [check_address(literal, allow_private=allow_private)]
        try:
            found = list(await self._resolver(host, port))
        except OSError as exc:
            raise httpcore.ConnectError(f"{host} does not resolve ({exc})") from exc
        if not found:
            raise httpcore.ConnectError(f"{host} resolves to no address")
        vetted: list[IPAddress] = []
        for address in found:
            try:
                vetted.append(check_address(address, allow_private=allow_private))
            except ForbiddenAddress as exc:
                raise ForbiddenAddress(f"{host} resolves to {exc.reason}") from None
        return vetted

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's interface)
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        try:
            async with asyncio.timeout_at(deadline):
                addresses = await self._vetted(host, port)
        except TimeoutError:
            raise httpcore.ConnectTimeout(f"resolving {host} timed out") from None
        failure: Exception = httpcore.ConnectError(f"no address of {host} answered")
        for ip in addresses:
            left = None if deadline is None else max(deadline - loop.time(), 0.001)
            try:
                return await self._inner.connect_tcp(
                    str(ip), port, left, local_address, socket_options
                )
            except httpcore.ConnectError as exc:
                failure = exc
        raise failure

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's interface)
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise ForbiddenAddress("unix sockets are never fetched")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class _PinnedTransport(httpx.AsyncHTTPTransport):
    """httpx's own transport (so OpenTelemetry's httpx instrumentation still wraps it)
    over a pool whose network backend pins vetted addresses. httpx 0.28 takes no
    ``network_backend``, hence the replaced ``_pool``."""

    def __init__(self, policy: FetchPolicy, resolver: Resolver, limits: httpx.Limits) -> None:
        context = _ssl_context(policy.verify_tls)
        super().__init__(verify=context, trust_env=False, limits=limits)
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=context,
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=_PinningBackend(policy, resolver),
        )


def _ssl_context(verify: bool | str) -> ssl.SSLContext:
    """A CA bundle path is read anew for every client (it may have changed); the public CAs
    (certifi, ~50 ms to load) are loaded once per process."""
    if isinstance(verify, str):
        if os.path.isdir(verify):
            return ssl.create_default_context(capath=verify)
        return ssl.create_default_context(cafile=verify)
    return _shared_ssl_context(verify)


@functools.cache
def _shared_ssl_context(verify: bool) -> ssl.SSLContext:
    return httpx.create_ssl_context(verify=verify, trust_env=False)


class _NoCookies(http.cookiejar.DefaultCookiePolicy):
    """Server-to-server fetches keep no cookies: nothing a remote sets is replayed."""

    def set_ok(self, cookie: http.cookiejar.Cookie, request: Any) -> bool:
        return False


class _Decoder:
    """Undoes one gzip or deflate content-coding, at most ``_PIECE`` bytes per step."""

    def __init__(self, coding: str, shown: str) -> None:
        coding = coding.strip().lower()
        self._shown = shown
        self._raw_deflate_tried = coding != "deflate"
        if coding in ("", "identity"):
            self._z = None
        elif coding in ("gzip", "x-gzip"):
            self._z = zlib.decompressobj(16 + zlib.MAX_WBITS)
        elif coding == "deflate":
            self._z = zlib.decompressobj()
        else:
            raise FetchFailed(f"unsupported content-encoding {coding[:40]!r}", shown)

    def feed(self, data: bytes) -> Iterator[bytes]:
        if self._z is None:
            yield data
            return
        while True:
            try:
                out = self._z.decompress(data, _PIECE)
            except zlib.error:
                if self._raw_deflate_tried:  # deflate sent without its zlib header
                    raise FetchFailed("corrupt compressed body", self._shown) from None
                self._raw_deflate_tried = True
                self._z = zlib.decompressobj(-zlib.MAX_WBITS)
                continue
            self._raw_deflate_tried = True
            if out:
                yield out
            data = self._z.unconsumed_tail
            if not data and len(out) < _PIECE:
                return


@dataclass(frozen=True)
class FetchResponse:
    """A whole response, its body read (and decoded) within the policy's limits."""

    status: int
    headers: httpx.Headers
    body: bytes
    url: str
    final_url: str
    peer: tuple[str, int] | None = None  # the address actually connected to

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    @property
    def text(self) -> str:
        charset = "utf-8"
        for param in self.headers.get("content-type", "").split(";")[1:]:
            key, _, value = param.partition("=")
            if key.strip().lower() == "charset":
                charset = value.strip().strip('"') or charset
        try:
            return self.body.decode(charset, errors="replace")
        except LookupError:
            return self.body.decode("utf-8", errors="replace")

    def json(self) -> Any:
        """Parsed body; for bodies of many MB, parse in a thread instead."""
        return jsonlib.loads(self.body)


class FetchStream:
    """A response whose body is read as it comes: ``async for chunk in stream``."""

    def __init__(
        self,
        response: httpx.Response,
        *,
        url: str,
        final_url: str,
        chunks: AsyncIterator[bytes],
    ) -> None:
        self.status = response.status_code
        self.headers = response.headers
        self.url = url
        self.final_url = final_url
        self.peer = _peer(response)
        self._chunks = chunks

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._chunks

    async def read(self) -> bytes:
        return b"".join([chunk async for chunk in self._chunks])


def _peer(response: httpx.Response) -> tuple[str, int] | None:
    stream = response.extensions.get("network_stream")
    try:
        address = stream.get_extra_info("server_addr") if stream is not None else None
    except Exception:  # a transport without socket details
        return None
    return (str(address[0]), int(address[1])) if address else None


def _origin(url: httpx.URL) -> tuple[str, str, int | None]:
    return url.scheme, url.host, url.port


class SafeClient:
    """The SSRF-safe client of one remote; see the module docstring for its promises.

    ``headers`` go with every request (e.g. MISP's ``Authorization``); ``secret_headers``
    names more headers to drop when a redirect leaves the origin.
    """

    def __init__(
        self,
        policy: FetchPolicy | None = None,
        *,
        resolver: Resolver = system_resolver,
        headers: Mapping[str, str] | None = None,
        secret_headers: Iterable[str] = (),
        limits: httpx.Limits | None = None,
    ) -> None:
        self.policy = policy or FetchPolicy()
        p = self.policy
        self._headers = httpx.Headers(headers or {})
        self._secret = _SECRET_HEADERS | {h.lower() for h in secret_headers}
        self._client = httpx.AsyncClient(
            transport=_PinnedTransport(p, resolver, limits or httpx.Limits()),
            follow_redirects=False,
            trust_env=False,  # no env proxies, no .netrc credentials
            cookies=http.cookiejar.CookieJar(policy=_NoCookies()),
            timeout=httpx.Timeout(
                connect=p.connect_timeout_s,
                read=p.read_timeout_s,
                write=p.read_timeout_s,
                pool=p.connect_timeout_s,
            ),
            headers={"User-Agent": "tessera-fetch", "Accept-Encoding": "gzip, deflate"},
        )

    async def __aenter__(self) -> SafeClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._client.aclose()

    async def get(self, url: str, **kwargs: Any) -> FetchResponse:
        return await self.request("GET", url, **kwargs)

    async def head(self, url: str, **kwargs: Any) -> FetchResponse:
        return await self.request("HEAD", url, **kwargs)

    async def post(self, url: str, **kwargs: Any) -> FetchResponse:
        return await self.request("POST", url, **kwargs)

    async def request(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        content: bytes | str | None = None,
        json: Any = None,
        follow_redirects: bool = True,
        secret_headers: Iterable[str] = (),
    ) -> FetchResponse:
        """Send, follow redirects, and read the whole body within the limits."""
        deadline = asyncio.get_running_loop().time() + self.policy.total_timeout_s
        async with self._open(
            method, url, params, headers, content, json, follow_redirects, secret_headers, deadline
        ) as stream:
            body = await stream.read()
        return FetchResponse(
            status=stream.status,
            headers=stream.headers,
            body=body,
            url=stream.url,
            final_url=stream.final_url,
            peer=stream.peer,
        )

    @asynccontextmanager
    async def stream(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        content: bytes | str | None = None,
        json: Any = None,
        follow_redirects: bool = True,
        secret_headers: Iterable[str] = (),
    ) -> AsyncIterator[FetchStream]:
        """Like :meth:`request`, but the body arrives in chunks (same checks and limits;
        the total deadline also runs while the caller handles chunks)."""
        deadline = asyncio.get_running_loop().time() + self.policy.total_timeout_s
        async with self._open(
            method, url, params, headers, content, json, follow_redirects, secret_headers, deadline
        ) as stream:
            yield stream

    @asynccontextmanager
    async def _open(
        self,
        method: str,
        url: str,
        params: Mapping[str, str] | None,
        headers: Mapping[str, str] | None,
        content: bytes | str | None,
        json: Any,
        follow_redirects: bool,
        secret_headers: Iterable[str],
        deadline: float,
    ) -> AsyncIterator[FetchStream]:
        method = method.upper()
        first = check_url(url, self.policy)
        if params:
            first = first.copy_merge_params(params)
        hop_headers = httpx.Headers(self._headers)
        hop_headers.update(headers or {})
        hop_headers["Accept-Encoding"] = "gzip, deflate"  # the codings _Decoder undoes
        body = content.encode() if isinstance(content, str) else content
        if json is not None:
            body = jsonlib.dumps(json).encode()
            hop_headers.setdefault("Content-Type", "application/json")
        secret = self._secret | {h.lower() for h in secret_headers}
        current, redirects = first, 0
        while True:
            response = await self._send(method, current, hop_headers, body, deadline)
            location = response.headers.get("location")
            if not (follow_redirects and response.status_code in _REDIRECTS and location):
                break
            await response.aclose()
            if redirects >= self.policy.max_redirects:
                raise TooManyRedirects(
                    f"more than {self.policy.max_redirects} redirects", redact(first)
                )
            redirects += 1
            try:
                target = current.join(location)
            except httpx.InvalidURL:
                raise ForbiddenUrl("malformed redirect location", redact(current)) from None
            current = check_url(target, self.policy)
            if _origin(current) != _origin(first):
                for name in secret:
                    hop_headers.pop(name, None)
            status = response.status_code
            if (status == 303 and method != "HEAD") or (status in (301, 302) and method == "POST"):
                method, body = "GET", None
                for name in _BODY_HEADERS:
                    hop_headers.pop(name, None)
        try:
            shown = redact(current)
            announced = response.headers.get("content-length", "")
            too_large = announced.isdigit() and int(announced) > self.policy.max_bytes
            if too_large and method != "HEAD":  # a HEAD announces the GET's length
                raise ResponseTooLarge(
                    f"announced {announced} bytes, more than {self.policy.max_bytes}", shown
                )
            chunks = self._body(response, shown, deadline)
            try:
                yield FetchStream(response, url=str(first), final_url=str(current), chunks=chunks)
            finally:
                await chunks.aclose()
        finally:
            await response.aclose()

    async def _send(
        self,
        method: str,
        url: httpx.URL,
        headers: httpx.Headers,
        body: bytes | None,
        deadline: float,
    ) -> httpx.Response:
        request = self._client.build_request(method, url, headers=headers, content=body)
        try:
            async with asyncio.timeout_at(deadline):
                return await self._client.send(request, stream=True)
        except _TRANSLATED as exc:
            raise _translate(exc, redact(url)) from _cause(exc)

    async def _body(
        self, response: httpx.Response, shown: str, deadline: float
    ) -> AsyncGenerator[bytes, None]:
        limit = self.policy.max_bytes
        decoder = _Decoder(response.headers.get("content-encoding", ""), shown)
        raw = response.aiter_raw()
        received = produced = 0
        while True:
            try:
                async with asyncio.timeout_at(deadline):
                    chunk = await anext(raw)
            except StopAsyncIteration:
                return
            except _TRANSLATED as exc:
                raise _translate(exc, shown) from _cause(exc)
            received += len(chunk)
            for piece in decoder.feed(chunk):
                produced += len(piece)
                if max(received, produced) > limit:
                    raise ResponseTooLarge(f"body exceeds {limit} bytes", shown)
                yield piece


_TRANSLATED = (FetchError, TimeoutError, httpx.HTTPError, httpx.InvalidURL, httpx.StreamError)


def _translate(exc: Exception, shown: str) -> FetchError:
    """Our error for an httpx error or the total deadline, with the URL as shown."""
    if isinstance(exc, FetchError):
        if not exc.url:
            exc.url = shown
        return exc
    if isinstance(exc, TimeoutError):
        return FetchTimeout("total timeout exceeded", shown)
    if isinstance(exc, httpx.TimeoutException):
        return FetchTimeout(f"{type(exc).__name__}", shown)
    if isinstance(exc, httpx.ConnectError):
        return FetchFailed(f"ConnectError: {str(exc)[:200]}", shown)
    return FetchFailed(type(exc).__name__, shown)


def _cause(exc: Exception) -> Exception | None:
    """Chain the original error, except ones whose text may quote our own headers."""
    if isinstance(exc, FetchError | httpx.LocalProtocolError | TimeoutError):
        return None
    return exc
