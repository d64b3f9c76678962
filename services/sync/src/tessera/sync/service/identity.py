"""Who a MISP client is: an auth API key sent MISP-style (``Authorization: <key>`` or
``X-MISP-AUTH: <key>``), verified against this service's projection of
``auth.api_key.*`` (expiry and allowed networks honoured), or an access token
(``Authorization: Bearer <jwt>``) verified like every service verifies them.

Then, in MISP's terms: the user's organisation (the oldest one they are still a member of)
and their role there (``SYNC__ROLES``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from tessera.common.problems import Problem
from tessera.common.security import Principal, TokenVerifier, api_key_usable, hash_api_key
from tessera.sync import directory
from tessera.sync.settings import RoleSettings
from tessera.sync.viewer import MispRole, Viewer

__all__ = ["AuthenticationFailed", "NoOrganisation", "viewer_for_key", "viewer_for_token"]


class AuthenticationFailed(Problem):
    """MISP's own words, which MISP clients show."""

    status = 403
    code = "authentication_failed"
    title = (
        "Authentication failed. Please make sure you pass the API key of an API enabled user "
        "along in the Authorization header."
    )


class NoOrganisation(Problem):
    status = 403
    code = "no_organisation"
    title = "You belong to no organisation: MISP acts for one"


@dataclass(frozen=True)
class _Key:
    revoked_at: datetime | None
    expires_at: datetime | None
    allowed_cidrs: list[str]


def role_for(
    roles: RoleSettings,
    *,
    user_uuid: UUID,
    org_uuid: UUID,
    membership_role: str,
    superadmin: bool,
) -> MispRole:
    if superadmin:
        return roles.superadmin
    if user_uuid in roles.users:
        return roles.users[user_uuid]
    kind = "admin" if membership_role == "admin" else "member"
    per_org = roles.organisations.get(org_uuid, {})
    if kind in per_org:
        return per_org[kind]
    return roles.organisation_admin if kind == "admin" else roles.member


async def _viewer(conn: Any, user_uuid: UUID, roles: RoleSettings, *, superadmin: bool) -> Viewer:
    user = await directory.user_by_uuid(conn, user_uuid)
    if user is None or user["deleted_at"] is not None:
        raise AuthenticationFailed()
    org = await directory.caller_org(conn, user_uuid)
    if org is None:
        raise NoOrganisation()
    return Viewer(
        user_id=int(user["id"]),
        user_uuid=user_uuid,
        email=user["email"] or "",
        org_id=int(org["id"]),
        org_uuid=org["uuid"],
        org_name=org["name"],
        role=role_for(
            roles,
            user_uuid=user_uuid,
            org_uuid=org["uuid"],
            membership_role=org["role"],
            superadmin=superadmin,
        ),
    )


async def viewer_for_key(
    conn: Any, key: str, *, client_ip: str | None, roles: RoleSettings
) -> Viewer:
    """The caller of an API key; 403 (MISP's answer) for a key that is unknown, revoked,
    expired or used from outside its networks."""
    record = await directory.key_record(conn, hash_api_key(key.strip()))
    usable = record is not None and api_key_usable(
        _Key(record["revoked_at"], record["expires_at"], json.loads(record["cidrs"])),
        client_ip=client_ip,
        now=datetime.now(UTC),
    )
    if not usable:
        raise AuthenticationFailed()
    return await _viewer(conn, record["user_uuid"], roles, superadmin=False)


async def viewer_for_token(
    conn: Any, token: str, *, verifier: TokenVerifier, roles: RoleSettings
) -> Viewer:
    principal: Principal = await verifier.verify(token)
    return await _viewer(conn, principal.user_id, roles, superadmin=principal.is_superadmin)
