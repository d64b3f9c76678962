"""What the applets route modules share: problem documentation, JSON answers, settings."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends
from fastapi.responses import Response

from tessera.applets.settings import Settings
from tessera.common.deps import Runtime

__all__ = ["PROBLEM", "AppletsSettings", "json_text"]

PROBLEM: dict[str, Any] = {"content": {"application/problem+json": {}}}
NOT_FOUND: dict[str, Any] = {
    "description": "no such applet, or the caller has no role on it",
    **PROBLEM,
}
FORBIDDEN: dict[str, Any] = {"description": "the caller's role does not allow this", **PROBLEM}
INVALID: dict[str, Any] = {
    "description": "the field named in `errors` is wrong (for a reference: with the "
    "`activity` and `item` it is in)",
    **PROBLEM,
}


def json_text(text: str, status_code: int = 200, headers: dict[str, str] | None = None) -> Response:
    """A JSON answer built by the use case or by PostgreSQL, sent without parsing it again."""
    return Response(text, status_code=status_code, media_type="application/json", headers=headers)


async def _settings(runtime: Runtime) -> Settings:
    settings = runtime.settings
    assert isinstance(settings, Settings)
    return settings


AppletsSettings = Annotated[Settings, Depends(_settings)]
