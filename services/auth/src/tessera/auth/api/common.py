"""What several of auth's route modules share: the problem+json response documentation,
the ``AuthContext`` and ``ClientInfo`` dependencies, and the ``UserPublic`` mapper."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends

from tessera.auth.models import User, UserView
from tessera.auth.schemas import UserPublic
from tessera.auth.service import context
from tessera.common.deps import Client, resource

__all__ = ["PROBLEM", "RATE_LIMITED", "ClientInfo", "Ctx", "user_public"]

PROBLEM: dict[str, Any] = {"content": {"application/problem+json": {}}}
RATE_LIMITED: dict[str, Any] = {"description": "rate limit; see Retry-After", **PROBLEM}

Ctx = Annotated[context.AuthContext, Depends(resource(context.AuthContext))]
"""Auth's context, provided to the runtime by the app's lifespan."""


async def _client_info(client: Client) -> context.ClientInfo:
    """The caller's address (the kernel resolves X-Forwarded-For from trusted proxies only)
    and agent."""
    return context.ClientInfo(ip_address=client.client_ip, user_agent=client.user_agent)


ClientInfo = Annotated[context.ClientInfo, Depends(_client_info)]


def user_public(user: User | UserView) -> UserPublic:
    return UserPublic(
        id=user.id,
        email=user.email,
        full_name=user.full_name,
        locale=user.locale,
        email_verified=user.email_verified_at is not None,
        created_at=user.created_at,
    )
