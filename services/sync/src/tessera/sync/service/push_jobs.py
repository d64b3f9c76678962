"""Which events go to which server, and the push jobs that send them: one asked for
(``servers/push``, ``tessera-sync push``), or one per server when an event is published here
(MISP's ``Event::publish`` → ``uploadEventToServersRouter``).

Nothing here talks to a remote or renders an event (``service/push.py`` runs the jobs), so
the use cases that publish an event (``service/events.py``, a pull's or a feed's
``ingest``) queue its pushes inside their own transaction: a publication and its pushes are
committed together, or not at all.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import structlog

from tessera.common.db import UnitOfWork, driver_in_transaction
from tessera.common.problems import Problem
from tessera.sync import access, exchange, store
from tessera.sync.events import PushRequested
from tessera.sync.service.servers import server_for
from tessera.sync.settings import Settings

__all__ = [
    "PushDisabled",
    "host_org_id",
    "push_published",
    "queue_push",
    "refusal",
    "remote_server",
    "rule_terms",
]

log = structlog.stdlib.get_logger(__name__)

Conn = Any


class PushDisabled(Problem):
    status = 403
    code = "push_disabled"
    title = "Push setting not enabled for this server."


def _now() -> datetime:
    return datetime.now(UTC)


# --- which events go ---------------------------------------------------------------------------


def rule_terms(rules: Mapping[str, Any], key: str, which: str) -> set[str]:
    """The terms of one push rule (``rules["tags"]["NOT"]``), as text."""
    rule = rules.get(key) or {}
    if not isinstance(rule, Mapping):
        return set()
    return {str(t) for t in rule.get(which) or [] if str(t)}


def remote_server(server: Mapping[str, Any]) -> access.RemoteServer:
    return access.RemoteServer(
        id=int(server["id"]),
        org_id=int(server["org_id"]),
        remote_org_id=server["remote_org_id"],
        internal=bool(server["internal"]),
    )


def refusal(
    event: Mapping[str, Any],
    server: Mapping[str, Any],
    sharing_group: access.SharingGroupView | None,
    *,
    host_org_id: int | None = None,
) -> str | None:
    """Why ``event`` (a row of :func:`exchange.push_candidates`) does not go to ``server``,
    or None when it goes.

    * pass-along: it was pulled from that server;
    * the push rules (``Server::eventFilterPushableServers``): ``tags`` ``OR`` (one of the
      event's tags must be listed) and ``NOT`` (none may be), ``orgs`` the same for its
      creator organisation. MISP's rules hold ids; names (and organisation uuids) are read too;
    * its distribution (``access.may_push_event``: 0 and 1 only to an internal server whose
      remote organisation is the host organisation, ``host_org_id``, the local id of
      ``SYNC__HOST_ORG_UUID``)."""
    if event["source_server_id"] is not None and event["source_server_id"] == server["id"]:
        return "pulled from this server"
    rules = server["push_rules"] or {}
    tags = {*map(str, event["tag_names"] or []), *map(str, event["tag_ids"] or [])}
    allowed = rule_terms(rules, "tags", "OR")
    if allowed and not allowed & tags:
        return "push rules: tags"
    if rule_terms(rules, "tags", "NOT") & tags:
        return "push rules: tags"
    creator = {str(event["orgc_id"]), str(event["orgc_uuid"]), str(event["orgc_name"])}
    allowed = rule_terms(rules, "orgs", "OR")
    if allowed and not allowed & creator:
        return "push rules: organisations"
    if rule_terms(rules, "orgs", "NOT") & creator:
        return "push rules: organisations"
    if not access.may_push_event(
        int(event["distribution"]),
        sharing_group=sharing_group,
        server=remote_server(server),
        host_org_id=host_org_id,
    ):
        return "distribution"
    return None


async def host_org_id(conn: Conn, settings: Settings) -> int | None:
    """The local id of the host organisation (``SYNC__HOST_ORG_UUID``), if it is known here."""
    if settings.host_org_uuid is None:
        return None
    found = await conn.fetchval(
        "SELECT id FROM organisations WHERE uuid = $1", settings.host_org_uuid
    )
    return None if found is None else int(found)


# --- the jobs ----------------------------------------------------------------------------------


async def _queue(
    uow: UnitOfWork,
    conn: Conn,
    server_id: int,
    *,
    event_uuid: uuid.UUID | None,
    requested_by: uuid.UUID | None,
) -> uuid.UUID:
    """A push job and its ``sync.push.requested``, in the caller's transaction."""
    job_id = uuid.uuid4()
    await exchange.insert_job(conn, {
        "id": job_id, "kind": "push", "server_id": server_id, "event_uuid": event_uuid,
        "requested_by": requested_by, "now": _now(),
    })  # fmt: skip
    uow.publish(
        PushRequested(job_id=job_id, server_id=server_id, event_uuid=event_uuid),
        subject=str(job_id),
    )
    return job_id


async def queue_push(
    uow: UnitOfWork,
    server_id: int,
    *,
    event_uuid: uuid.UUID | None = None,
    requested_by: uuid.UUID | None,
) -> uuid.UUID:
    """A push (of every event, or of one) to the server: its job and ``sync.push.requested``
    in one transaction; the caller has checked who may (``push.start_push`` for a user;
    ``tessera-sync push`` is an operator, ``requested_by`` None). 403 ``push_disabled`` when
    the server's ``push`` is off."""
    server = await server_for(uow, server_id)
    if not server["push"]:
        raise PushDisabled()
    async with uow:
        conn = await driver_in_transaction(uow.session)
        job_id = await _queue(
            uow, conn, server_id, event_uuid=event_uuid, requested_by=requested_by
        )
        await uow.commit()
    return job_id


async def push_published(
    uow: UnitOfWork, conn: Conn, event_id: int, *, requested_by: uuid.UUID | None
) -> list[uuid.UUID]:
    """MISP's ``Event::publish`` → ``uploadEventToServersRouter``, as jobs: the event just
    published (in the caller's transaction, ``conn``) gets a push job of its own (kind
    ``push``, its ``event_uuid``) for every server with ``push`` on that it may go to —
    :func:`refusal`: never back to the server it was pulled from (MISP's pass-along), the
    push rules, its distribution. The job's own run checks again, with the host organisation
    (an internal server is given a job for an event of distribution 0 or 1 here, as the
    settings that say whether it takes them are the job's to read) and the remote's
    ``filterEventIdsForPush`` (a server that has the event as new, the one that pushed it
    here say, gets nothing). The job ids, none when nothing goes anywhere."""
    servers = await exchange.push_servers(conn)
    if not servers:
        return []
    rows = await exchange.push_candidates(conn, event_id=event_id)
    if not rows:
        return []  # no live attribute nor report: MISP pushes no empty event
    event = rows[0]
    group_id = event["sharing_group_id"] or 0
    groups = await store.sharing_group_views(conn, [group_id])
    jobs = []
    for server in servers:
        optimistic_host = server["remote_org_id"] if server["internal"] else None
        if refusal(event, server, groups.get(group_id), host_org_id=optimistic_host):
            continue
        jobs.append(
            await _queue(uow, conn, int(server["id"]), event_uuid=event["uuid"],
                         requested_by=requested_by)
        )  # fmt: skip
    if jobs:
        log.info("push_on_publish", event_uuid=str(event["uuid"]), jobs=[str(j) for j in jobs])
    return jobs
