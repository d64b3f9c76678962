"""FastAPI dependencies every service uses, declared once as ``Annotated`` types.

    from tessera.common.deps import UoW, Caller, ClientIP, UserAgent

    @router.post("/things", status_code=201)
    async def create(body: ThingIn, uow: UoW, caller: Caller) -> ThingOut: ...

All of them are ``async def``: FastAPI runs a plain ``def`` dependency in a thread pool, a
hand-off that costs more than the work of these. A service's own objects (auth's
``AuthContext``, say) are provided to the runtime at start (``runtime.provide(obj)``) and
reached with ``Annotated[AuthContext, Depends(resource(AuthContext))]``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, TypeVar

from fastapi import Depends, Request

from tessera.common.db import UnitOfWork
from tessera.common.http import RequestInfo, current_request
from tessera.common.problems import Problem
from tessera.common.revocation import Revocations
from tessera.common.runtime import ServiceRuntime
from tessera.common.security import CurrentPrincipal, Principal

__all__ = [
    "Caller",
    "Client",
    "ClientIP",
    "Revoker",
    "Runtime",
    "Superadmin",
    "UoW",
    "UserAgent",
    "resource",
]

T = TypeVar("T")


async def _runtime(request: Request) -> ServiceRuntime:
    runtime: ServiceRuntime = request.app.state.runtime
    return runtime


async def _unit_of_work(request: Request) -> UnitOfWork:
    """A fresh unit of work (not yet open: the use case opens and commits it)."""
    return (await _runtime(request)).uow()


async def _client(request: Request) -> RequestInfo:
    info = current_request()
    if info is None:  # outside the kernel's middleware (a bare test app): the connection
        client = request.client
        return RequestInfo("", client.host if client else None, request.headers.get("user-agent"))
    return info


async def _client_ip(request: Request) -> str | None:
    return (await _client(request)).client_ip


async def _user_agent(request: Request) -> str | None:
    return (await _client(request)).user_agent


async def _revocations(request: Request) -> Revocations:
    return (await _runtime(request)).revocations


def resource(kind: type[T]) -> Callable[[Request], Awaitable[T]]:
    """A dependency answering the object of type ``kind`` the service provided at start."""

    async def get(request: Request) -> T:
        return (await _runtime(request)).get(kind)

    get.__name__ = f"resource_{kind.__name__}"
    return get


Runtime = Annotated[ServiceRuntime, Depends(_runtime)]
UoW = Annotated[UnitOfWork, Depends(_unit_of_work)]
Caller = CurrentPrincipal


class NotSuperadmin(Problem):
    status = 403
    code = "not_superadmin"
    title = "Only a superadmin may do this"


async def _superadmin(caller: CurrentPrincipal) -> Principal:
    if not caller.is_superadmin:
        raise NotSuperadmin()
    return caller


Superadmin = Annotated[Principal, Depends(_superadmin)]
"""The caller, who must hold the ``superadmin`` role (else 403 ``not_superadmin``)."""
Client = Annotated[RequestInfo, Depends(_client)]
ClientIP = Annotated[str | None, Depends(_client_ip)]
UserAgent = Annotated[str | None, Depends(_user_agent)]
Revoker = Annotated[Revocations, Depends(_revocations)]
