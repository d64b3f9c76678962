"""The app factory: health, readiness, problem+json errors, request ids and body limits."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request
from pydantic import BaseModel, Field

from tessera.common.http import create_service_app, current_request
from tessera.common.problems import Problem
from tessera.common.settings import ServiceSettings

PREFIX = "/probe"
LIMIT = 2048
SECRET_TEXT = "db password is hunter2"


class Widget(BaseModel):
    name: str = Field(min_length=1, max_length=20)
    size: int = Field(ge=1)


class WidgetMissing(Problem):
    status = 404
    code = "widget_not_found"
    title = "No such widget"


class Health:
    """Readiness checks whose outcome a test can flip."""

    def __init__(self) -> None:
        self.broker_up = True

    async def database(self) -> None:
        return None

    async def broker(self) -> None:
        if not self.broker_up:
            raise ConnectionRefusedError(SECRET_TEXT)


def build_app(health: Health) -> FastAPI:
    settings = ServiceSettings(environment="test", http={"max_body_bytes": LIMIT})
    app = create_service_app(
        settings=settings,
        prefix=PREFIX,
        title="probe",
        readiness=lambda: {"database": health.database, "broker": health.broker},
    )

    @app.post(f"{PREFIX}/widgets", status_code=201)
    async def create_widget(body: Widget) -> Widget:
        return body

    @app.get(f"{PREFIX}/widgets/{{widget_id}}")
    async def get_widget(widget_id: int) -> Widget:
        raise WidgetMissing(f"widget {widget_id} does not exist")

    @app.get(f"{PREFIX}/boom")
    async def boom() -> None:
        raise RuntimeError(SECRET_TEXT)

    return app


@pytest.fixture
def health() -> Health:
    return Health()


@pytest.fixture
async def client(health: Health) -> AsyncIterator[httpx.AsyncClient]:
    # raise_app_exceptions=False: Starlette re-raises after rendering the 500, as under uvicorn
    transport = httpx.ASGITransport(app=build_app(health), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://probe") as client:
        yield client


def assert_problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == status
    assert body["code"] == code
    assert body["type"].endswith("/" + code)
    assert body["title"]
    return body


async def test_healthz_answers_200(client: httpx.AsyncClient) -> None:
    response = await client.get(f"{PREFIX}/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_readyz_is_200_when_every_check_passes(client: httpx.AsyncClient) -> None:
    response = await client.get(f"{PREFIX}/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "checks": {"database": "ok", "broker": "ok"}}


async def test_readyz_is_503_problem_naming_the_failing_check(
    client: httpx.AsyncClient, health: Health
) -> None:
    health.broker_up = False
    body = assert_problem(await client.get(f"{PREFIX}/readyz"), 503, "not_ready")
    assert [e["field"] for e in body["errors"]] == ["broker"]
    assert "ConnectionRefusedError" in body["errors"][0]["message"]
    assert SECRET_TEXT not in str(body)


async def test_invalid_body_is_422_naming_the_wrong_field(client: httpx.AsyncClient) -> None:
    response = await client.post(f"{PREFIX}/widgets", json={"name": "ok", "size": 0})
    body = assert_problem(response, 422, "validation_failed")
    assert [e["field"] for e in body["errors"]] == ["size"]
    assert body["errors"][0]["in"] == "body"
    assert "size" in body["detail"]


async def test_missing_and_mistyped_fields_are_each_named(client: httpx.AsyncClient) -> None:
    response = await client.post(f"{PREFIX}/widgets", json={"size": "big"})
    body = assert_problem(response, 422, "validation_failed")
    assert sorted(e["field"] for e in body["errors"]) == ["name", "size"]


async def test_body_that_is_not_json_is_422_not_500(client: httpx.AsyncClient) -> None:
    response = await client.post(
        f"{PREFIX}/widgets", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert_problem(response, 422, "validation_failed")


async def test_bad_path_parameter_is_422_naming_it(client: httpx.AsyncClient) -> None:
    body = assert_problem(await client.get(f"{PREFIX}/widgets/abc"), 422, "validation_failed")
    assert body["errors"][0]["field"] == "widget_id"
    assert body["errors"][0]["in"] == "path"


async def test_good_body_reaches_the_route(client: httpx.AsyncClient) -> None:
    response = await client.post(f"{PREFIX}/widgets", json={"name": "cog", "size": 3})
    assert response.status_code == 201
    assert response.json() == {"name": "cog", "size": 3}


async def test_problem_subclass_is_rendered_with_its_status_and_code(
    client: httpx.AsyncClient,
) -> None:
    body = assert_problem(await client.get(f"{PREFIX}/widgets/7"), 404, "widget_not_found")
    assert body["title"] == "No such widget"
    assert body["detail"] == "widget 7 does not exist"
    assert body["instance"] == f"{PREFIX}/widgets/7"


async def test_unexpected_exception_is_500_problem_without_its_text(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get(f"{PREFIX}/boom", headers={"X-Request-ID": "req-boom-1"})
    body = assert_problem(response, 500, "internal_error")
    assert SECRET_TEXT not in response.text
    assert "RuntimeError" not in response.text
    assert body["request_id"] == "req-boom-1"
    assert response.headers["x-request-id"] == "req-boom-1"


async def test_given_request_id_is_kept_and_echoed(client: httpx.AsyncClient) -> None:
    response = await client.get(f"{PREFIX}/healthz", headers={"X-Request-ID": "abc-123"})
    assert response.headers["x-request-id"] == "abc-123"

    response = await client.get(f"{PREFIX}/widgets/1", headers={"X-Request-ID": "abc-456"})
    assert response.headers["x-request-id"] == "abc-456"
    assert response.json()["request_id"] == "abc-456"


async def test_request_id_is_generated_when_missing_or_unusable(
    client: httpx.AsyncClient,
) -> None:
    first = await client.get(f"{PREFIX}/widgets/1")
    second = await client.get(f"{PREFIX}/widgets/1", headers={"X-Request-ID": "x" * 500})
    ids = [r.headers["x-request-id"] for r in (first, second)]
    for response, request_id in zip((first, second), ids, strict=True):
        assert re.fullmatch(r"[0-9a-f]{32}", request_id)
        assert response.json()["request_id"] == request_id
    assert ids[0] != ids[1]


async def test_body_declared_larger_than_the_limit_is_413(client: httpx.AsyncClient) -> None:
    response = await client.post(
        f"{PREFIX}/widgets",
        content=b"x" * (LIMIT + 1),
        headers={"content-type": "application/json", "X-Request-ID": "big-1"},
    )
    body = assert_problem(response, 413, "payload_too_large")
    assert response.headers["x-request-id"] == "big-1"
    assert body["request_id"] == "big-1"


async def test_streamed_body_larger_than_the_limit_is_413(client: httpx.AsyncClient) -> None:
    sent_chunks = 0

    async def chunks() -> AsyncIterator[bytes]:
        nonlocal sent_chunks
        for _ in range(10):
            sent_chunks += 1
            yield b" " * 512

    request = client.build_request(
        "POST",
        f"{PREFIX}/widgets",
        content=chunks(),
        headers={"content-type": "application/json", "X-Request-ID": "big-2"},
    )
    assert "content-length" not in request.headers
    assert request.headers["transfer-encoding"] == "chunked"
    response = await client.send(request)
    body = assert_problem(response, 413, "payload_too_large")
    assert body["request_id"] == "big-2"
    assert response.headers["x-request-id"] == "big-2"
    assert sent_chunks < 10  # reading stopped at the limit, not at the end of the body


async def test_streamed_body_under_the_limit_is_accepted(client: httpx.AsyncClient) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"name": "cog",'
        yield b' "size": 2}'

    response = await client.post(
        f"{PREFIX}/widgets", content=chunks(), headers={"content-type": "application/json"}
    )
    assert response.status_code == 201
    assert response.json() == {"name": "cog", "size": 2}


async def test_unknown_route_is_404_problem(client: httpx.AsyncClient) -> None:
    body = assert_problem(await client.get(f"{PREFIX}/nowhere"), 404, "not_found")
    assert body["instance"] == f"{PREFIX}/nowhere"


async def test_wrong_method_is_405_problem(client: httpx.AsyncClient) -> None:
    assert_problem(await client.delete(f"{PREFIX}/healthz"), 405, "method_not_allowed")


async def test_openapi_is_served_under_the_prefix(client: httpx.AsyncClient) -> None:
    response = await client.get(f"{PREFIX}/openapi.json")
    assert response.status_code == 200
    document = response.json()
    assert document["info"]["title"] == "probe"
    assert f"{PREFIX}/widgets" in document["paths"]
    assert f"{PREFIX}/healthz" in document["paths"]
    assert (await client.get("/openapi.json")).status_code == 404
    assert (await client.get(f"{PREFIX}/docs")).status_code == 200


async def test_the_handler_knows_the_request_id_address_and_agent() -> None:
    app = create_service_app(
        settings=ServiceSettings(environment="test"), prefix="/probe", title="probe"
    )

    @app.get("/probe/whoami")
    async def whoami() -> dict[str, Any]:
        info = current_request()
        assert info is not None
        return {"id": info.request_id, "ip": info.client_ip, "agent": info.user_agent}

    transport = httpx.ASGITransport(app=app, client=("203.0.113.5", 4000))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
        r = await c.get("/probe/whoami", headers={"X-Request-ID": "req-77", "User-Agent": "ua/1"})
    assert r.json() == {"id": "req-77", "ip": "203.0.113.5", "agent": "ua/1"}
    assert current_request() is None, "nothing leaks outside the request"


# --- request ids from outside ----------------------------------------------------------------


@pytest.mark.parametrize(
    "incoming",
    ["é" * 128, "x" * 65, "has space", "semi;colon", "new\nline", "<script>", "ünïcode-1"],
)
async def test_request_id_that_is_not_a_short_ascii_id_is_replaced(
    client: httpx.AsyncClient, incoming: str
) -> None:
    response = await client.get(
        f"{PREFIX}/widgets/1", headers=[("X-Request-ID", incoming.encode())]
    )
    request_id = response.headers["x-request-id"]
    assert request_id != incoming
    assert re.fullmatch(r"[0-9a-f]{32}", request_id)
    assert response.json()["request_id"] == request_id


@pytest.mark.parametrize(
    "incoming", ["a", "req-1.2:3_4", "A" * 64, "0af7651916cd43dd8448eb211c80319c"]
)
async def test_short_ascii_request_id_is_kept(client: httpx.AsyncClient, incoming: str) -> None:
    response = await client.get(f"{PREFIX}/healthz", headers={"X-Request-ID": incoming})
    assert response.headers["x-request-id"] == incoming


# --- client addresses ------------------------------------------------------------------------


def _whoami_app(trusted: list[str]) -> FastAPI:
    settings = ServiceSettings(environment="test", http={"trusted_proxies": trusted})
    app = create_service_app(settings=settings, prefix="/probe", title="probe")

    @app.get("/probe/whoami")
    async def whoami(request: Request) -> dict[str, Any]:
        info = current_request()
        assert info is not None
        return {"ip": info.client_ip, "client": request.client.host if request.client else None}

    return app


async def _seen_address(peer: str, forwarded_for: str | None, trusted: list[str]) -> Any:
    transport = httpx.ASGITransport(app=_whoami_app(trusted), client=(peer, 4000))
    headers = {"X-Forwarded-For": forwarded_for} if forwarded_for is not None else {}
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
        body = (await c.get("/probe/whoami", headers=headers)).json()
    assert body["ip"] == body["client"], "request.client and current_request() disagree"
    return body["ip"]


@pytest.mark.parametrize(
    ("peer", "forwarded_for", "seen"),
    [
        # a client talking to the service directly cannot claim another address
        ("203.0.113.9", "198.51.100.1", "203.0.113.9"),
        ("203.0.113.9", None, "203.0.113.9"),
        # through the gateway (trusted), the address it wrote is the client's
        ("127.0.0.1", "198.51.100.1", "198.51.100.1"),
        # what the client prepended is ignored: only the gateway's (rightmost) entry counts
        ("127.0.0.1", "10.9.9.9, 198.51.100.1", "198.51.100.1"),
        # a chain of trusted proxies is walked from the right
        ("127.0.0.1", "198.51.100.1, 10.0.0.5", "198.51.100.1"),
        # garbage stops the walk at the last hop that could be trusted
        ("127.0.0.1", "not-an-address", "127.0.0.1"),
        ("127.0.0.1", "198.51.100.1, junk", "127.0.0.1"),
        ("::1", "2001:db8::7", "2001:db8::7"),
    ],
)
async def test_client_address_comes_from_the_connection_and_trusted_proxies_only(
    peer: str, forwarded_for: str | None, seen: str
) -> None:
    assert await _seen_address(peer, forwarded_for, ["127.0.0.1", "::1", "10.0.0.0/8"]) == seen


async def test_without_trusted_proxies_no_forwarded_header_is_believed() -> None:
    assert await _seen_address("127.0.0.1", "198.51.100.1", []) == "127.0.0.1"


def test_trusted_proxies_that_are_not_addresses_are_refused_at_start() -> None:
    with pytest.raises(ValueError, match="not an address or network"):
        ServiceSettings(environment="test", http={"trusted_proxies": ["gateway.local"]})


# --- readiness details -----------------------------------------------------------------------


async def test_readyz_shows_what_a_check_reports_without_failing() -> None:
    async def outbox() -> dict[str, Any]:
        return {"pending": 3, "parked": 1}

    app = create_service_app(
        settings=ServiceSettings(environment="test"),
        prefix=PREFIX,
        title="probe",
        readiness=lambda: {"outbox": outbox},
    )
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
        response = await c.get(f"{PREFIX}/readyz")
    assert response.status_code == 200
    assert response.json()["checks"] == {"outbox": {"pending": 3, "parked": 1}}
