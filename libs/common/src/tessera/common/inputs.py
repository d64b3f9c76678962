"""Request inputs no service can store: NUL characters, refused once for every route.

PostgreSQL ``text`` cannot hold U+0000, so a NUL that reaches a query fails there as a 500.
:func:`reject_nul_characters` runs before every route of a service app (an app-level
dependency, added by :func:`install_input_guards`) and answers 422 ``validation_failed``
naming each field that holds one: path and query parameters, headers, and every string (and
key) of a JSON or form body. Schemas need no validator of their own.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from fastapi import Depends, FastAPI, Request, WebSocket, params
from fastapi.exceptions import RequestValidationError, WebSocketRequestValidationError
from starlette.requests import HTTPConnection

from tessera.common.openapi import VALIDATION

__all__ = ["NUL_ERROR_TYPE", "install_input_guards", "reject_nul_characters"]

NUL = "\x00"
NUL_ERROR_TYPE = "string_nul"
_MESSAGE = "must not contain NUL (U+0000) characters"
# a NUL can only be in a JSON document as this escape (a raw NUL byte is not valid JSON)
_JSON_NUL = b"\\u0000"


def _printable(name: str) -> str:
    return name.replace(NUL, "\\u0000")


def _error(where: str, *path: str | int) -> dict[str, Any]:
    loc = (where, *(_printable(p) if isinstance(p, str) else p for p in path))
    return {"type": NUL_ERROR_TYPE, "loc": loc, "msg": _MESSAGE, "input": None}


def _nul_paths(value: Any, path: tuple[str | int, ...] = ()) -> Iterator[tuple[str | int, ...]]:
    """The path of every string (value or key) holding a NUL inside a JSON value."""
    if isinstance(value, str):
        if NUL in value:
            yield path
    elif isinstance(value, dict):
        for key, item in value.items():
            if NUL in key:
                yield (*path, key)
            else:
                yield from _nul_paths(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _nul_paths(item, (*path, index))


async def _body_errors(request: Request, body_field: Any) -> list[dict[str, Any]]:
    if isinstance(body_field.field_info, params.Form):
        form = await request.form()  # parsed (and cached) by FastAPI already
        return [
            _error("body", name)
            for name, value in form.multi_items()
            if NUL in name or (isinstance(value, str) and NUL in value)
        ]
    body = await request.body()  # read (and cached) by FastAPI already
    if _JSON_NUL not in body:
        return []
    try:
        document = json.loads(body)
    except ValueError:  # not JSON: FastAPI validates it as whatever the route declares
        return []
    return [_error("body", *path) for path in _nul_paths(document)]


async def reject_nul_characters(connection: HTTPConnection) -> None:
    """FastAPI dependency: 422 naming every input that contains a NUL character (a
    WebSocket route's handshake is checked too, a request's body as well)."""
    errors = [
        _error("path", name)
        for name, value in connection.path_params.items()
        if isinstance(value, str) and NUL in value
    ]
    errors += [
        _error("query", name)
        for name, value in connection.query_params.multi_items()
        if NUL in name or NUL in value
    ]
    errors += [_error("header", name) for name, value in connection.headers.items() if NUL in value]
    body_field = getattr(connection.scope.get("route"), "body_field", None)
    if isinstance(connection, Request) and body_field is not None:
        errors += await _body_errors(connection, body_field)
    if errors and isinstance(connection, WebSocket):
        raise WebSocketRequestValidationError(errors)  # closes the handshake (1008)
    if errors:
        raise RequestValidationError(errors)


def install_input_guards(app: FastAPI) -> None:
    """Guard every route added to ``app`` from now on (routes added before stay unguarded),
    and document the 422 on each of them: FastAPI gives a route the app's dependencies and
    responses as of when it is added, so both reach exactly the same routes."""
    app.router.dependencies.append(Depends(reject_nul_characters))
    app.router.responses.setdefault(422, {"description": VALIDATION})
