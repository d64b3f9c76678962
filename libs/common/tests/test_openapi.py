"""The OpenAPI of a service app documents the errors it really answers, as problem+json."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import jsonschema
import pytest
from fastapi import FastAPI
from pydantic import BaseModel, Field

from tessera.common.http import create_service_app
from tessera.common.pagination import MAX_OFFSET, Page, Paging
from tessera.common.security import CurrentPrincipal, StaticKeySource, TokenVerifier
from tessera.common.settings import ServiceSettings

PREFIX = "/probe"
PROBLEM = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}


class Widget(BaseModel):
    name: str = Field(min_length=1, max_length=20)


def build_app() -> FastAPI:
    settings = ServiceSettings(environment="test")
    app = create_service_app(settings=settings, prefix=PREFIX, title="probe")
    app.state.verifier = TokenVerifier(settings.jwt, StaticKeySource())

    @app.post(f"{PREFIX}/widgets", status_code=201, responses={409: {"description": "taken"}})
    async def create_widget(body: Widget) -> Widget:
        return body

    @app.get(f"{PREFIX}/widgets")
    async def list_widgets(page: Paging, caller: CurrentPrincipal) -> Page[Widget]:
        return Page.of([], 0, page)

    @app.get(f"{PREFIX}/gadgets")
    async def list_gadgets(page: Paging) -> Page[Widget]:
        return Page.of([], 0, page)

    return app


@pytest.fixture
def document() -> dict[str, Any]:
    return build_app().openapi()


def operation(document: dict[str, Any], method: str, path: str) -> dict[str, Any]:
    found: dict[str, Any] = document["paths"][f"{PREFIX}{path}"][method]
    return found


def test_422_is_problem_json_with_the_kernels_shape(document: dict[str, Any]) -> None:
    for method, path in [("post", "/widgets"), ("get", "/widgets")]:
        response = operation(document, method, path)["responses"]["422"]
        assert response["content"] == PROBLEM
    schemas = document["components"]["schemas"]
    assert "HTTPValidationError" not in schemas
    assert "ValidationError" not in schemas
    assert schemas["Problem"]["required"] == ["type", "title", "status", "code"]
    field_error = schemas["ProblemFieldError"]["properties"]
    assert set(field_error) == {"field", "in", "message", "type"}


def test_each_route_lists_the_errors_the_kernel_gives_it(document: dict[str, Any]) -> None:
    create = operation(document, "post", "/widgets")["responses"]
    # a body: unparseable (400), too large (413), invalid (422); its own 409 is problem+json
    assert sorted(create) == ["201", "400", "409", "413", "422"]
    assert create["409"] == {"description": "taken", "content": PROBLEM}
    assert create["201"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Widget"
    }
    listing = operation(document, "get", "/widgets")
    # a bearer token: missing or invalid (401), keys or deny-list unavailable (503)
    assert sorted(listing["responses"]) == ["200", "401", "422", "503"]
    assert listing["security"] == [{"bearer": []}]
    assert document["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    offset = next(p for p in listing["parameters"] if p["name"] == "offset")
    assert offset["schema"]["maximum"] == MAX_OFFSET
    # the kernel's own routes take no input and stay as they were, apart from problem+json
    assert sorted(operation(document, "get", "/healthz")["responses"]) == ["200"]
    assert operation(document, "get", "/readyz")["responses"]["503"]["content"] == PROBLEM


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=build_app(), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://probe") as client:
        yield client


async def test_answered_problems_match_the_documented_schema(
    client: httpx.AsyncClient,
) -> None:
    document = (await client.get(f"{PREFIX}/openapi.json")).json()
    problem = {"$ref": "#/components/schemas/Problem", "components": document["components"]}
    answers = [
        await client.post(f"{PREFIX}/widgets", json={"name": ""}),
        await client.post(f"{PREFIX}/widgets", json={"name": "a\x00"}),
        await client.post(
            f"{PREFIX}/widgets", content=b"\xff", headers={"content-type": "application/json"}
        ),
        await client.get(f"{PREFIX}/widgets"),
        await client.get(f"{PREFIX}/gadgets", params={"offset": MAX_OFFSET + 1}),
    ]
    assert [a.status_code for a in answers] == [422, 422, 400, 401, 422]
    for answer in answers:
        assert answer.headers["content-type"] == "application/problem+json"
        jsonschema.validate(answer.json(), problem)
