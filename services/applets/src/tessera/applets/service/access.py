"""Who the caller is to an applet: every use case starts here (see ``domain.Access``)."""

from __future__ import annotations

import uuid
from typing import Any

from tessera.applets import directory, store
from tessera.applets.domain import Access, AppletNotFound, Role
from tessera.common.security import Principal

__all__ = ["access_to"]


async def access_to(
    conn: Any, applet_id: uuid.UUID, caller: Principal, *, lock: bool = False
) -> Access:
    """The caller's roles on the live applet (``lock``: its row locked for a change).

    404 when the applet is deleted, unknown, or the caller has no role on it and does not
    administer its organisation."""
    applet = await (store.applet_for_update if lock else store.applet_row)(conn, applet_id)
    if applet is None or applet["deleted_at"] is not None:
        raise AppletNotFound()
    roles = await directory.roles_of(conn, applet_id, caller.user_id)
    org_admin = await directory.is_member(
        conn, applet["organisation_id"], caller.user_id, caller.orgs, admin=True
    )
    access = Access(applet, frozenset(Role(r) for r in roles), org_admin)
    if not access.effective:
        raise AppletNotFound()
    return access
