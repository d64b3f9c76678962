"""The OpenAPI of a service app tells the truth about its errors.

FastAPI documents a 422 ``HTTPValidationError`` as ``application/json`` and nothing else; the
kernel answers every error as RFC 9457 ``application/problem+json`` (``problems.py``,
``http.py``). :func:`install_openapi` rewrites the generated document once, when first
served:

- a ``Problem`` schema (and ``ProblemFieldError``) replaces ``HTTPValidationError``; every
  error response (4xx/5xx) a route documents is ``application/problem+json`` with it;
- each operation also lists the errors the kernel itself can give it: 422 when it has inputs
  (``inputs.py`` adds it to every route it guards), 400 and 413 when it takes a body (not
  parseable, too large), 401 and 503 when it needs a bearer token (missing, invalid, expired
  or revoked; signing keys or deny-list unavailable).

Success responses stay exactly as FastAPI generated them. There is no ``default`` response:
a status code a route can give must be listed, so contract tests catch one that is not.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from tessera.common.problems import PROBLEM_BASE, PROBLEM_CONTENT_TYPE

__all__ = ["FIELD_ERROR_SCHEMA", "PROBLEM_SCHEMA", "document_problems", "install_openapi"]

PROBLEM_REF = "#/components/schemas/Problem"
FIELD_ERROR_REF = "#/components/schemas/ProblemFieldError"

FIELD_ERROR_SCHEMA: dict[str, Any] = {
    "title": "ProblemFieldError",
    "type": "object",
    "description": "One wrong input.",
    "properties": {
        "field": {
            "type": "string",
            "description": "dotted path of the input (`name`, `allowed_cidrs.0`), or where it "
            "was when it has no name (`body`)",
        },
        "in": {"type": "string", "enum": ["body", "query", "path", "header", "cookie"]},
        "message": {"type": "string"},
        "type": {"type": "string", "description": "machine-readable kind of error"},
    },
    "required": ["field", "message"],
}

PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "Problem",
    "type": "object",
    "description": "RFC 9457 problem details; `code` is stable and machine readable.",
    "properties": {
        "type": {"type": "string", "format": "uri", "examples": [PROBLEM_BASE + "not_found"]},
        "title": {"type": "string"},
        "status": {"type": "integer", "minimum": 400, "maximum": 599},
        "code": {"type": "string", "examples": ["validation_failed"]},
        "detail": {"type": "string"},
        "errors": {"type": "array", "items": {"$ref": FIELD_ERROR_REF}},
        "instance": {"type": "string", "description": "the path of the request"},
        "request_id": {"type": "string"},
    },
    "required": ["type", "title", "status", "code"],
}

# what the kernel itself may answer, whatever the route does
VALIDATION = "The request is not valid: `errors` names each wrong input"
BAD_BODY = "The body cannot be parsed (not JSON, or not UTF-8)"
TOO_LARGE = "The body is larger than the service accepts"
UNAUTHORIZED = "The bearer token is missing, invalid, expired or revoked"
UNAVAILABLE = "A dependency is unavailable (signing keys, token deny-list)"

_FASTAPI_VALIDATION_SCHEMAS = ("HTTPValidationError", "ValidationError")
_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")


def install_openapi(app: FastAPI) -> None:
    """Make ``app.openapi()`` (and ``/<prefix>/openapi.json``) document problem responses."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = document_problems(generate())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _problem_content() -> dict[str, Any]:
    return {PROBLEM_CONTENT_TYPE: {"schema": {"$ref": PROBLEM_REF}}}


def _has_own_schema(response: dict[str, Any]) -> bool:
    """Whether a route documented an error body of its own (anything but empty, or FastAPI's
    validation error)."""
    for media in (response.get("content") or {}).values():
        schema = (media or {}).get("schema") or {}
        ref = str(schema.get("$ref", ""))
        if schema and not ref.endswith(_FASTAPI_VALIDATION_SCHEMAS):
            return True
    return False


def document_problems(document: dict[str, Any]) -> dict[str, Any]:
    """``document`` (FastAPI's OpenAPI of a service app), its error responses made truthful."""
    for item in document.get("paths", {}).values():
        for method, operation in item.items():
            if method not in _METHODS:
                continue
            responses: dict[str, Any] = operation.setdefault("responses", {})
            has_inputs = bool(operation.get("parameters") or operation.get("requestBody"))
            kernel: dict[str, str] = {}
            if has_inputs:
                kernel["422"] = VALIDATION
            if "requestBody" in operation:
                kernel["400"] = BAD_BODY
                kernel["413"] = TOO_LARGE
            if operation.get("security"):
                kernel["401"] = UNAUTHORIZED
                kernel["503"] = UNAVAILABLE
            for status, description in kernel.items():
                responses.setdefault(status, {"description": description})
            if "422" in responses and responses["422"].get("description") == "Validation Error":
                responses["422"]["description"] = VALIDATION
            for status, response in responses.items():
                is_error = status == "default" or status[:1] in ("4", "5")
                if is_error and not _has_own_schema(response):
                    response["content"] = _problem_content()
            operation["responses"] = dict(sorted(responses.items()))
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    for name in _FASTAPI_VALIDATION_SCHEMAS:
        schemas.pop(name, None)
    schemas["Problem"] = PROBLEM_SCHEMA
    schemas["ProblemFieldError"] = FIELD_ERROR_SCHEMA
    document["components"]["schemas"] = dict(sorted(schemas.items()))
    return document
