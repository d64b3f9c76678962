"""The app factory every service uses: health, readiness, errors, request id, limits.

``create_service_app`` returns a FastAPI app whose routes live under the service prefix,
with ``/<prefix>/healthz`` (the process is alive), ``/<prefix>/readyz`` (every dependency
check passes), OpenAPI at ``/<prefix>/openapi.json`` and docs at ``/<prefix>/docs``.
"""

from __future__ import annotations

import html
import ipaddress
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import AbstractAsyncContextManager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

import asyncpg
import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import HTMLResponse, JSONResponse, Response
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tessera.common.ids import safe_id
from tessera.common.inputs import install_input_guards
from tessera.common.logging import get_logger
from tessera.common.metrics import MetricsMiddleware, metrics_response
from tessera.common.openapi import install_openapi
from tessera.common.problems import PROBLEM_CONTENT_TYPE, Problem, problem_body
from tessera.common.settings import ServiceSettings

__all__ = [
    "ReadinessCheck",
    "RequestInfo",
    "create_service_app",
    "current_request",
    "field_errors",
    "problem_response",
]

#: raises when the dependency is not ready; may return details to show (a dict)
ReadinessCheck = Callable[[], Awaitable[Any]]
log = get_logger(__name__)

REQUEST_ID_HEADER = "x-request-id"


def problem_response(
    request: Request | None,
    *,
    status: int,
    code: str,
    title: str,
    detail: str | None = None,
    errors: list[dict[str, Any]] | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    request_id = request.scope.get("request_id") if request is not None else None
    body = problem_body(
        status=status,
        code=code,
        title=title,
        detail=detail,
        errors=errors,
        instance=request.url.path if request is not None else None,
        request_id=request_id,
    )
    return JSONResponse(
        body, status_code=status, media_type=PROBLEM_CONTENT_TYPE, headers=dict(headers or {})
    )


def field_errors(exc: RequestValidationError) -> list[dict[str, Any]]:
    """Each invalid input as `{field, in, message, type}` (what a 422 problem lists)."""
    errors = []
    for err in exc.errors():
        loc = [str(p) for p in err.get("loc", ())]
        if loc and loc[0] in {"body", "query", "path", "header", "cookie"}:
            where, path = loc[0], loc[1:]
        else:
            where, path = "body", loc
        errors.append(
            {
                "field": ".".join(path) or where,
                "in": where,
                "message": err.get("msg", "invalid"),
                "type": err.get("type", "value_error"),
            }
        )
    return errors


_STATUS_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    429: "too_many_requests",
}


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(Problem)
    async def _problem(request: Request, exc: Problem) -> JSONResponse:
        return problem_response(
            request,
            status=exc.status,
            code=exc.code,
            title=exc.title,
            detail=exc.detail,
            errors=exc.errors,
            headers=exc.headers,
        )

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = field_errors(exc)
        fields = ", ".join(e["field"] for e in errors)
        return problem_response(
            request,
            status=422,
            code="validation_failed",
            title="The request is not valid",
            detail=f"invalid: {fields}" if fields else None,
            errors=errors,
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _STATUS_CODES.get(exc.status_code, f"http_{exc.status_code}")
        title = code.replace("_", " ").capitalize()
        detail = exc.detail if isinstance(exc.detail, str) and exc.detail != title else None
        return problem_response(
            request,
            status=exc.status_code,
            code=code,
            title=title,
            detail=detail,
            headers=getattr(exc, "headers", None),
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled_error", path=request.url.path)
        # rendered by Starlette's outermost middleware, outside RequestContextMiddleware
        request_id = request.scope.get("request_id")
        return problem_response(
            request,
            status=500,
            code="internal_error",
            title="Internal server error",
            headers={"X-Request-ID": request_id} if request_id else None,
        )

    async def _unavailable(request: Request, exc: Exception) -> JSONResponse:
        dependency = dependency_down(exc)
        if dependency is None:
            return await _unexpected(request, exc)
        log.warning("dependency_unavailable", dependency=dependency, error=type(exc).__name__)
        return problem_response(
            request,
            status=503,
            code=f"{dependency}_unavailable",
            title=f"The {dependency} is unavailable",
            detail="retry shortly",
            headers={"Retry-After": "1"},
        )

    for kind in (DBAPIError, PoolTimeout, RedisConnectionError, RedisTimeoutError):
        app.add_exception_handler(kind, _unavailable)


def dependency_down(exc: BaseException) -> str | None:
    """``"database"`` or ``"redis"`` when ``exc`` says that server is unreachable, overloaded
    or dropped the connection (a 503 the client may retry), else None (a bug: a 500)."""
    if isinstance(exc, RedisConnectionError | RedisTimeoutError):
        return "redis"
    if isinstance(exc, PoolTimeout):
        return "database"  # every connection busy: overloaded
    if isinstance(exc, DBAPIError):
        if exc.connection_invalidated:
            return "database"
        original = getattr(exc.orig, "__cause__", None) or exc.orig
        if isinstance(
            original,
            OSError
            | asyncpg.exceptions.PostgresConnectionError
            | asyncpg.exceptions.InterfaceError
            | asyncpg.exceptions.CannotConnectNowError
            | asyncpg.exceptions.TooManyConnectionsError
            | asyncpg.exceptions.QueryCanceledError,  # statement_timeout
        ):
            return "database"
    return None


@dataclass(frozen=True)
class RequestInfo:
    """Where the request being handled came from (for audit trails and abuse checks)."""

    request_id: str
    client_ip: str | None = None
    user_agent: str | None = None


_current_request: ContextVar[RequestInfo | None] = ContextVar("tessera_request", default=None)


def current_request() -> RequestInfo | None:
    """The request being handled in this task, or None outside a request."""
    return _current_request.get()


Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(values: list[str]) -> tuple[Network, ...]:
    """``["127.0.0.1", "10.0.0.0/8"]`` as networks (a bare address is a /32 or /128)."""
    return tuple(ipaddress.ip_network(v.strip(), strict=False) for v in values)


def client_address(
    peer: str | None, forwarded_for: str | None, trusted: tuple[Network, ...]
) -> str | None:
    """The client's address: the connection's peer, unless the peer is a trusted proxy.

    Behind trusted proxies, ``X-Forwarded-For`` is read from the right (the hop closest to
    us) and the first address that is not itself a trusted proxy is the client; what a
    client wrote further left is never reached. A value that is not an address stops the
    walk at the last hop we could trust.
    """
    if peer is None or not forwarded_for or not _within(peer, trusted):
        return peer
    client = peer
    for entry in reversed(forwarded_for.split(",")):
        candidate = entry.strip()
        try:
            ipaddress.ip_address(candidate)
        except ValueError:
            return client
        client = candidate
        if not _within(candidate, trusted):
            return candidate
    return client


def _within(address: str, networks: tuple[Network, ...]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in networks)


class RequestContextMiddleware:
    """Give every request an id (kept from ``X-Request-ID`` when it is a short ASCII id,
    else a new one), take the client's address from the connection (``X-Forwarded-For``
    only from ``trusted_proxies``), make both and the agent known to the code handling it,
    and log the request."""

    def __init__(self, app: ASGIApp, *, trusted_proxies: tuple[Network, ...] = ()) -> None:
        self.app = app
        self.trusted_proxies = trusted_proxies

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        request_id = safe_id(headers.get(REQUEST_ID_HEADER.encode())) or uuid.uuid4().hex
        scope["request_id"] = request_id
        peer = scope.get("client")
        forwarded = headers.get(b"x-forwarded-for", b"").decode("latin-1")
        client_ip = client_address(peer[0] if peer else None, forwarded, self.trusted_proxies)
        if peer and client_ip != peer[0]:
            scope["client"] = (client_ip, 0)  # what ``request.client`` answers from now on
            proto = headers.get(b"x-forwarded-proto", b"").decode("latin-1")
            if proto in ("http", "https"):
                scope["scheme"] = proto if scope["type"] == "http" else proto.replace("http", "ws")
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        structlog.contextvars.bind_contextvars(request_id=request_id)
        agent = headers.get(b"user-agent", b"").decode("latin-1")[:512]
        token = _current_request.set(RequestInfo(request_id, client_ip, agent or None))
        started = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = list(message.get("headers", []))
                headers.append((REQUEST_ID_HEADER.encode(), request_id.encode()))
                message["headers"] = headers
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            path = scope.get("path", "")
            if not path.endswith(("/healthz", "/readyz")):
                log.info(
                    "http_request",
                    method=scope.get("method"),
                    path=path,
                    status=status,
                    duration_ms=round((time.perf_counter() - started) * 1000, 2),
                )
            structlog.contextvars.unbind_contextvars("request_id")
            _current_request.reset(token)


class BodySizeLimitMiddleware:
    """Refuse request bodies above ``max_bytes`` with 413, declared or streamed."""

    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._too_large(scope, send)
            return
        seen = 0

        async def limited_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise _BodyTooLarge(self.max_bytes)
            return message

        try:
            await self.app(scope, limited_receive, send)
        except _BodyTooLarge:
            await self._too_large(scope, send)

    async def _too_large(self, scope: Scope, send: Send) -> None:
        response = problem_response(
            Request(scope),
            status=413,
            code="payload_too_large",
            title="Request body too large",
            detail=f"the limit is {self.max_bytes} bytes",
        )
        await response(scope, _empty_receive, send)


class _BodyTooLarge(StarletteHTTPException):
    """Raised from ``receive``: an HTTPException, so FastAPI's body parsing passes it on
    (it turns any other exception into a 400) and the problem handler renders a 413."""

    def __init__(self, max_bytes: int) -> None:
        super().__init__(413, f"the limit is {max_bytes} bytes")


async def _empty_receive() -> Message:
    return {"type": "http.request", "body": b"", "more_body": False}


def create_service_app(
    *,
    settings: ServiceSettings,
    prefix: str,
    title: str,
    description: str = "",
    version: str = "0.1.0",
    lifespan: Callable[[FastAPI], AbstractAsyncContextManager[None]] | None = None,
    readiness: Callable[[], Mapping[str, ReadinessCheck]] | None = None,
    asyncapi: Callable[[], dict[str, Any]] | None = None,
    metrics: Callable[[], Awaitable[Any]] | None = None,
) -> FastAPI:
    """Build a service app; routers are added by the caller under ``prefix``.

    ``metrics`` refreshes what ``/<prefix>/metrics`` reads at scrape time (queue depths,
    outbox rows, the pool); the RED metrics of every route are recorded anyway.
    """

    async def _noop_lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield

    from contextlib import asynccontextmanager

    app = FastAPI(
        title=title,
        description=description,
        version=version,
        openapi_url=f"{prefix}/openapi.json",
        docs_url=f"{prefix}/docs" if settings.http.public_docs else None,
        redoc_url=None,
        lifespan=lifespan or asynccontextmanager(_noop_lifespan),
        telemetry={"tracing": False},
    )
    install_error_handlers(app)

    @app.get(f"{prefix}/healthz", tags=["health"], summary="The process is alive")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get(
        f"{prefix}/readyz",
        tags=["health"],
        summary="Every dependency answers",
        responses={503: {"description": "a dependency is down"}},
    )
    async def readyz(request: Request) -> JSONResponse:
        checks = readiness() if readiness is not None else {}
        results: dict[str, Any] = {}
        ok = True
        for name, check in checks.items():
            try:
                detail = await check()
                results[name] = detail if isinstance(detail, dict) else "ok"
            except Exception as exc:
                ok = False
                results[name] = f"failed: {type(exc).__name__}"
        if not ok:
            return problem_response(
                request,
                status=503,
                code="not_ready",
                title="A dependency is not ready",
                errors=[
                    {"field": k, "message": v}
                    for k, v in results.items()
                    if isinstance(v, str) and v != "ok"
                ],
            )
        return JSONResponse({"status": "ok", "checks": results})

    if asyncapi is not None:
        app.state.asyncapi = asyncapi
        _add_asyncapi_routes(app, prefix, asyncapi)

    @app.get(f"{prefix}/metrics", include_in_schema=False)
    async def prometheus_metrics(request: Request) -> Response:
        return await metrics_response(request, metrics)

    app.add_middleware(BodySizeLimitMiddleware, max_bytes=settings.http.max_body_bytes)
    if settings.http.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.http.cors_origins,
            allow_credentials=True,
            allow_methods=["*"],
            allow_headers=["*"],
            expose_headers=["X-Request-ID", "Retry-After"],
        )
    app.add_middleware(
        MetricsMiddleware,
        service=settings.service_name,
        skip=(f"{prefix}/healthz", f"{prefix}/readyz", f"{prefix}/metrics"),
    )
    app.add_middleware(
        RequestContextMiddleware, trusted_proxies=parse_networks(settings.http.trusted_proxies)
    )
    # the service's routes, added from here on, refuse NUL characters (422); the OpenAPI
    # documents the problem+json errors of every route
    install_input_guards(app)
    install_openapi(app)
    return app


def _add_asyncapi_routes(app: FastAPI, prefix: str, document: Callable[[], dict[str, Any]]) -> None:
    @app.get(f"{prefix}/asyncapi.json", tags=["docs"], summary="AsyncAPI document (events)")
    async def asyncapi_json() -> JSONResponse:
        return JSONResponse(document())

    @app.get(
        f"{prefix}/asyncapi",
        tags=["docs"],
        summary="AsyncAPI documentation page",
        response_class=HTMLResponse,
    )
    async def asyncapi_page() -> HTMLResponse:
        title = html.escape(str(document().get("info", {}).get("title", "AsyncAPI")))
        page = _ASYNCAPI_PAGE.replace("{title}", title).replace("{url}", f"{prefix}/asyncapi.json")
        return HTMLResponse(page)


_ASYNCAPI_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>{title}</title>
<link rel="stylesheet" href="https://unpkg.com/@asyncapi/react-component@3.1.5/styles/default.min.css">
</head><body><div id="asyncapi"></div>
<script src="https://unpkg.com/@asyncapi/react-component@3.1.5/browser/standalone/index.js"></script>
<script>
AsyncApiStandalone.render(
  {schema: {url: "{url}"}, config: {show: {sidebar: true}}},
  document.getElementById("asyncapi"),
);
</script></body></html>
"""


def instrument_app(app: FastAPI, provider: Any, prefix: str) -> None:
    """A server span for every request but health probes and scrapes (none when tracing is
    disabled). Only the server span: the ASGI ``send``/``receive`` child spans would be two
    more spans per request that say nothing the server span does not."""
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

    from tessera.common.telemetry import tracing_disabled

    if tracing_disabled():
        return
    FastAPIInstrumentor.instrument_app(
        app,
        tracer_provider=provider,
        excluded_urls=f"{prefix}/healthz,{prefix}/readyz,{prefix}/metrics",
        exclude_spans=["receive", "send"],
    )
