"""Reading versions: the list, one version's document, and what changed in it."""

from __future__ import annotations

import json
import uuid
from typing import Any

from tessera.applets import store
from tessera.applets.changes import describe_changes
from tessera.applets.domain import Action
from tessera.applets.service.access import access_to
from tessera.common.db import UnitOfWork
from tessera.common.problems import Problem
from tessera.common.security import Principal

__all__ = ["VersionNotFound", "changes", "get_version", "latest_content", "list_versions"]


class VersionNotFound(Problem):
    status = 404
    code = "version_not_found"
    title = "The applet has no such version"


async def list_versions(
    uow: UnitOfWork, applet_id: uuid.UUID, caller: Principal, *, limit: int, offset: int
) -> tuple[list[Any], int]:
    async with uow.driver() as conn:
        (await access_to(conn, applet_id, caller)).require(Action.read_versions)
        return await store.versions_page(conn, applet_id, limit=limit, offset=offset)


async def get_version(
    uow: UnitOfWork, applet_id: uuid.UUID, version: str, caller: Principal
) -> str:
    """The version as JSON text: its metadata and the document it fixed."""
    async with uow.driver() as conn:
        (await access_to(conn, applet_id, caller)).require(Action.read_versions)
        row = await store.version_content(conn, applet_id, version)
    if row is None:
        raise VersionNotFound(f"no version {version}")
    head = json.dumps(
        {
            "applet_id": str(applet_id),
            "version": row["version"],
            "created_at": row["created_at"].isoformat(),
            "created_by": None if row["created_by"] is None else str(row["created_by"]),
        }
    )
    return f'{head[:-1]}, "content": {row["content"]}}}'


async def changes(
    uow: UnitOfWork, applet_id: uuid.UUID, version: str, caller: Principal
) -> dict[str, Any]:
    """What ``version`` changed against the one before it."""
    async with uow.driver() as conn:
        (await access_to(conn, applet_id, caller)).require(Action.read_versions)
        row = await store.version_content(conn, applet_id, version)
        if row is None:
            raise VersionNotFound(f"no version {version}")
        previous = await store.previous_version(conn, applet_id, version)
    before = None if previous is None else json.loads(previous["content"])
    return {
        "applet_id": applet_id,
        "version": row["version"],
        "previous_version": None if previous is None else previous["version"],
        "changes": describe_changes(before, json.loads(row["content"])),
    }


async def latest_content(
    uow: UnitOfWork, applet_id: uuid.UUID, caller: Principal, action: Action
) -> dict[str, Any]:
    """The current version's document, for a caller allowed ``action`` (export)."""
    async with uow.driver() as conn:
        (await access_to(conn, applet_id, caller)).require(action)
        row = await store.version_content(conn, applet_id, None)
    content: dict[str, Any] = json.loads(row["content"])
    return content
