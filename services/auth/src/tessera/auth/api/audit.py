"""``GET /auth/audit``: the audit log for superadmins and organisation admins."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict

from tessera.auth import audit
from tessera.common.deps import Caller, UoW
from tessera.common.pagination import Page, Paging

__all__ = ["router"]

router = APIRouter(prefix="/auth", tags=["audit"])


class AuditEntryOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    occurred_at: datetime
    actor_id: uuid.UUID | None
    action: str
    target_type: str
    target_id: str | None
    organisation_id: uuid.UUID | None
    ip_address: str | None
    user_agent: str | None
    request_id: str | None
    before: dict[str, Any] | None
    after: dict[str, Any] | None


@router.get(
    "/audit",
    summary="Audit entries, newest first (superadmins: all; organisation admins: theirs)",
    responses={403: {"description": "neither superadmin nor organisation admin"}},
)
async def list_audit(
    uow: UoW,
    caller: Caller,
    page: Paging,
    actor_id: Annotated[uuid.UUID | None, Query()] = None,
    action: Annotated[str | None, Query(max_length=64)] = None,
    target_id: Annotated[str | None, Query(max_length=64)] = None,
    organisation_id: Annotated[uuid.UUID | None, Query()] = None,
    since: Annotated[datetime | None, Query(description="inclusive, ISO 8601")] = None,
    until: Annotated[datetime | None, Query(description="exclusive, ISO 8601")] = None,
) -> Page[AuditEntryOut]:
    rows, total = await audit.list_entries(
        uow,
        caller,
        audit.AuditFilter(
            actor_id=actor_id,
            action=action,
            target_id=target_id,
            organisation_id=organisation_id,
            since=since,
            until=until,
        ),
        page,
    )
    return Page.of([AuditEntryOut.model_validate(r) for r in rows], total, page)
