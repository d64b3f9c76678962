"""Personal API keys: shown once, stored as SHA-256, optionally expiring and IP-bound.

A key looks like ``tsk_<prefix>_<secret>``; the prefix (public) lets a user recognise it in a
list. ``auth.api_key.created`` carries the hash so services that accept MISP-style
``Authorization: <key>`` headers verify keys from their own projection.
"""

from __future__ import annotations

import ipaddress
import secrets
import uuid
from datetime import datetime

from sqlalchemy import func, select

from tessera.auth import audit
from tessera.auth.events import ApiKeyCreated, ApiKeyRevoked
from tessera.auth.models import ApiKey, utcnow
from tessera.common.db import UnitOfWork
from tessera.common.pagination import PageParams
from tessera.common.problems import Problem
from tessera.common.security import Principal, hash_api_key

__all__ = ["create_api_key", "list_api_keys", "revoke_api_key"]

PREFIX = "tsk"


class ApiKeyNotFound(Problem):
    status = 404
    code = "api_key_not_found"
    title = "No such API key"


def normalise_cidrs(cidrs: list[str]) -> list[str]:
    errors = []
    out = []
    for i, cidr in enumerate(cidrs):
        try:
            out.append(str(ipaddress.ip_network(cidr.strip(), strict=False)))
        except ValueError:
            errors.append(
                {"field": f"allowed_cidrs.{i}", "in": "body", "message": "not an IP network"}
            )
    if errors:
        raise Problem("invalid network", status=422, code="validation_failed", errors=errors)
    return out


async def create_api_key(
    uow: UnitOfWork,
    caller: Principal,
    *,
    name: str,
    expires_at: datetime | None,
    allowed_cidrs: list[str],
) -> tuple[ApiKey, str]:
    """Create a key for the caller; returns the row and the key (never stored)."""
    if expires_at is not None and expires_at <= utcnow():
        raise Problem(
            "expires_at is in the past",
            status=422,
            code="validation_failed",
            errors=[{"field": "expires_at", "in": "body", "message": "must be in the future"}],
        )
    cidrs = normalise_cidrs(allowed_cidrs)
    public = secrets.token_hex(4)
    key = f"{PREFIX}_{public}_{secrets.token_urlsafe(32)}"
    async with uow:
        row = ApiKey(
            user_id=caller.user_id,
            name=name,
            prefix=f"{PREFIX}_{public}",
            key_hash=hash_api_key(key),
            allowed_cidrs=cidrs,
            expires_at=expires_at,
        )
        uow.session.add(row)
        audit.record(
            uow,
            actor_id=caller.user_id,
            action="api_key.created",
            target_type="api_key",
            target_id=row.id,
            after={
                "name": name,
                "prefix": row.prefix,
                "allowed_cidrs": cidrs,
                "expires_at": expires_at.isoformat() if expires_at else None,
            },
        )
        uow.publish(
            ApiKeyCreated(
                api_key_id=row.id,
                user_id=row.user_id,
                key_hash=row.key_hash,
                prefix=row.prefix,
                expires_at=expires_at.isoformat() if expires_at else None,
                allowed_cidrs=cidrs,
            ),
            subject=str(row.id),
        )
        await uow.commit()
    return row, key


async def list_api_keys(
    uow: UnitOfWork, caller: Principal, page: PageParams
) -> tuple[list[ApiKey], int]:
    async with uow:
        where = ApiKey.user_id == caller.user_id
        total = await uow.session.scalar(select(func.count()).select_from(ApiKey).where(where))
        rows = await uow.session.execute(
            select(ApiKey)
            .where(where)
            .order_by(ApiKey.created_at.desc(), ApiKey.id)
            .limit(page.limit)
            .offset(page.offset)
        )
        return list(rows.scalars()), int(total or 0)


async def revoke_api_key(uow: UnitOfWork, caller: Principal, key_id: uuid.UUID) -> None:
    async with uow:
        row = await uow.session.get(ApiKey, key_id, with_for_update=True)
        if row is None or row.user_id != caller.user_id:
            raise ApiKeyNotFound()
        if row.revoked_at is None:
            row.revoked_at = utcnow()
            audit.record(
                uow,
                actor_id=caller.user_id,
                action="api_key.revoked",
                target_type="api_key",
                target_id=row.id,
                before={"name": row.name, "prefix": row.prefix},
            )
            uow.publish(
                ApiKeyRevoked(api_key_id=row.id, user_id=row.user_id, key_hash=row.key_hash),
                subject=str(row.id),
            )
        await uow.commit()
