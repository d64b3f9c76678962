"""The events the sync service handles: auth's, kept as a local projection; and the work it
sends itself (pulls, pushes, feed fetches), which talks to remote servers with no transaction
open.

A step of a job (reading the index, one event) that fails in a way it did not foresee is
retried as any handler is; on its last attempt the failure is recorded in the job (the item
counted as failed, or the job failed) before the message is given up, so that a job always
ends and says why, rather than staying ``running``."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import structlog

from tessera.common.consumers import Consumer, Handling
from tessera.sync.events import (
    ApiKeyCreated,
    ApiKeyRevoked,
    FeedFetchRequested,
    FeedItemRequested,
    MembershipGranted,
    MembershipRevoked,
    OrganisationCreated,
    OrganisationUpdated,
    PullItemRequested,
    PullRequested,
    PushItemRequested,
    PushRequested,
    UserDeleted,
    UserRegistered,
)
from tessera.sync.service import feeds, projection, pull, push

__all__ = ["consumer"]

log = structlog.stdlib.get_logger(__name__)
Step = Callable[[Handling, Any], Awaitable[None]]


def _accounted(step: Step, *, item: bool) -> Step:
    """``step``, its unforeseen failure on the last attempt recorded in its job: an item
    counted as failed, a job's first step failing the job. Only the exception's type is
    recorded (its text may hold what a remote sent); the log has the traceback."""

    async def handle(uow: Handling, event: Any) -> None:
        try:
            await step(uow, event)
        except Exception as exc:
            if not uow.last_attempt:
                raise
            reason = f"internal error ({type(exc).__name__}), see the sync service's log"
            log.exception("job_step_gave_up", step=step.__name__, job_id=str(event.job_id))
            if item:
                error = f"{event.event_uuid}: {reason}"
                await pull.count_item(uow, event.job_id, failed=1, error=error)
            else:
                await pull.finish_job(uow, event.job_id, error=reason)

    handle.__name__ = step.__name__
    return handle


consumer = Consumer()
consumer.on(UserRegistered, projection.user_registered)
consumer.on(UserDeleted, projection.user_deleted)
consumer.on(OrganisationCreated, projection.organisation_changed)
consumer.on(OrganisationUpdated, projection.organisation_changed)
consumer.on(MembershipGranted, projection.membership_granted)
consumer.on(MembershipRevoked, projection.membership_revoked)
consumer.on(ApiKeyCreated, projection.api_key_created)
consumer.on(ApiKeyRevoked, projection.api_key_revoked)
consumer.on(PullRequested, _accounted(pull.run_pull, item=False), transaction=False)
consumer.on(PullItemRequested, _accounted(pull.pull_item, item=True), transaction=False)
consumer.on(PushRequested, _accounted(push.run_push, item=False), transaction=False)
consumer.on(PushItemRequested, _accounted(push.push_item, item=True), transaction=False)
consumer.on(FeedFetchRequested, _accounted(feeds.run_fetch, item=False), transaction=False)
consumer.on(FeedItemRequested, _accounted(feeds.feed_item, item=True), transaction=False)
