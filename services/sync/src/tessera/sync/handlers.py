"""The events the sync service handles: auth's, kept as a local projection; and the work it
sends itself (pulls, pushes, feed fetches), which talks to remote servers with no transaction
open."""

from __future__ import annotations

from tessera.common.consumers import Consumer
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

consumer = Consumer()
consumer.on(UserRegistered, projection.user_registered)
consumer.on(UserDeleted, projection.user_deleted)
consumer.on(OrganisationCreated, projection.organisation_changed)
consumer.on(OrganisationUpdated, projection.organisation_changed)
consumer.on(MembershipGranted, projection.membership_granted)
consumer.on(MembershipRevoked, projection.membership_revoked)
consumer.on(ApiKeyCreated, projection.api_key_created)
consumer.on(ApiKeyRevoked, projection.api_key_revoked)
consumer.on(PullRequested, pull.run_pull, transaction=False)
consumer.on(PullItemRequested, pull.pull_item, transaction=False)
consumer.on(PushRequested, push.run_push, transaction=False)
consumer.on(PushItemRequested, push.push_item, transaction=False)
consumer.on(FeedFetchRequested, feeds.run_fetch, transaction=False)
consumer.on(FeedItemRequested, feeds.feed_item, transaction=False)
