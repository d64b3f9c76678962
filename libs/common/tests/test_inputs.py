"""NUL characters in any input are refused once for every route, as 422 naming the input."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any

import httpx
import pytest
from fastapi import FastAPI, Header, WebSocket
from pydantic import BaseModel
from starlette.websockets import WebSocketDisconnect

from tessera.common.http import create_service_app
from tessera.common.settings import ServiceSettings

PREFIX = "/probe"


class Note(BaseModel):
    title: str
    tags: list[str] = []
    extra: dict[str, str] = {}


def build_app() -> FastAPI:
    app = create_service_app(
        settings=ServiceSettings(environment="test"), prefix=PREFIX, title="probe"
    )

    @app.post(f"{PREFIX}/notes", status_code=201)
    async def create_note(note: Note) -> Note:
        return note

    @app.get(f"{PREFIX}/notes/{{slug}}")
    async def get_note(
        slug: str, q: str = "", x_trace: Annotated[str | None, Header()] = None
    ) -> dict[str, str]:
        return {"slug": slug, "q": q}

    return app


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=build_app(), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://probe") as client:
        yield client


def nul_errors(response: httpx.Response) -> list[tuple[str, str]]:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["code"] == "validation_failed"
    assert all(e["type"] == "string_nul" for e in body["errors"])
    return [(e["in"], e["field"]) for e in body["errors"]]


@pytest.mark.parametrize(
    ("note", "fields"),
    [
        ({"title": "a\x00b"}, ["title"]),
        ({"title": "ok", "tags": ["fine", "bad\x00"]}, ["tags.1"]),
        ({"title": "ok", "extra": {"k\x00": "v", "k": "\x00"}}, ["extra.k\\u0000", "extra.k"]),
    ],
)
async def test_a_nul_anywhere_in_a_json_body_is_422_naming_the_field(
    client: httpx.AsyncClient, note: dict[str, Any], fields: list[str]
) -> None:
    response = await client.post(f"{PREFIX}/notes", json=note)
    assert nul_errors(response) == [("body", f) for f in fields]


async def test_an_escaped_backslash_u0000_is_ordinary_text(client: httpx.AsyncClient) -> None:
    response = await client.post(f"{PREFIX}/notes", json={"title": "\\u0000"})
    assert response.status_code == 201, response.text
    assert response.json()["title"] == "\\u0000"


async def test_a_nul_in_a_query_path_or_header_is_422_naming_it(
    client: httpx.AsyncClient,
) -> None:
    assert nul_errors(await client.get(f"{PREFIX}/notes/x", params={"q": "a\x00"})) == [
        ("query", "q")
    ]
    assert nul_errors(await client.get(f"{PREFIX}/notes/a%00b")) == [("path", "slug")]
    response = await client.get(f"{PREFIX}/notes/x", headers={"x-trace": "a\x00b"})
    assert nul_errors(response) == [("header", "x-trace")]
    # a header the route does not declare reaches the code too (the user agent is stored)
    response = await client.get(f"{PREFIX}/notes/x", headers={"user-agent": "curl\x00"})
    assert nul_errors(response) == [("header", "user-agent")]


async def test_inputs_without_nul_pass(client: httpx.AsyncClient) -> None:
    response = await client.get(f"{PREFIX}/notes/x", params={"q": "ok"})
    assert response.status_code == 200, response.text
    assert response.json() == {"slug": "x", "q": "ok"}


@pytest.mark.filterwarnings("ignore:Using `httpx` with `starlette.testclient`")
def test_a_websocket_handshake_with_a_nul_is_refused() -> None:
    from fastapi.testclient import TestClient

    app = build_app()

    @app.websocket(f"{PREFIX}/ws")
    async def ws(websocket: WebSocket, room: str = "") -> None:
        await websocket.accept()
        await websocket.send_text(room)
        await websocket.close()

    with TestClient(app) as http:
        with http.websocket_connect(f"{PREFIX}/ws?room=a") as socket:
            assert socket.receive_text() == "a"
        with (
            pytest.raises(WebSocketDisconnect) as closed,
            http.websocket_connect(f"{PREFIX}/ws?room=a%00") as socket,
        ):
            socket.receive_text()
        assert closed.value.code == 1008
