"""RFC 9457 problem details: one error shape for every service.

Routes raise :class:`Problem` (or a subclass); the app factory renders it as
``application/problem+json`` with a stable ``type`` and ``code``. Validation errors name
each wrong field in ``errors``.
"""

from __future__ import annotations

from typing import Any

__all__ = ["PROBLEM_BASE", "PROBLEM_CONTENT_TYPE", "Problem", "problem_body"]

PROBLEM_CONTENT_TYPE = "application/problem+json"
PROBLEM_BASE = "https://tessera.dev/problems/"


class Problem(Exception):
    """An error a client can act on; ``code`` is stable and machine readable."""

    status: int = 400
    code: str = "bad_request"
    title: str = "Bad request"

    def __init__(
        self,
        detail: str | None = None,
        *,
        status: int | None = None,
        code: str | None = None,
        title: str | None = None,
        errors: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail or title or self.title)
        self.detail = detail
        if status is not None:
            self.status = status
        if code is not None:
            self.code = code
        if title is not None:
            self.title = title
        self.errors = errors or []
        self.headers = headers or {}

    def body(self, *, instance: str | None = None) -> dict[str, Any]:
        return problem_body(
            status=self.status,
            code=self.code,
            title=self.title,
            detail=self.detail,
            errors=self.errors,
            instance=instance,
        )


def problem_body(
    *,
    status: int,
    code: str,
    title: str,
    detail: str | None = None,
    errors: list[dict[str, Any]] | None = None,
    instance: str | None = None,
    request_id: str | None = None,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": PROBLEM_BASE + code,
        "title": title,
        "status": status,
        "code": code,
    }
    if detail:
        body["detail"] = detail
    if errors:
        body["errors"] = errors
    if instance:
        body["instance"] = instance
    if request_id:
        body["request_id"] = request_id
    return body
