"""The events the applets service handles: auth's, kept as a local projection."""

from __future__ import annotations

from tessera.applets.events import (
    MembershipGranted,
    MembershipRevoked,
    OrganisationCreated,
    OrganisationUpdated,
    UserDeleted,
    UserRegistered,
)
from tessera.applets.service import projection
from tessera.common.consumers import Consumer

__all__ = ["consumer"]

consumer = Consumer()
consumer.on(UserRegistered, projection.user_registered)
consumer.on(UserDeleted, projection.user_deleted)
consumer.on(OrganisationCreated, projection.organisation_changed)
consumer.on(OrganisationUpdated, projection.organisation_changed)
consumer.on(MembershipGranted, projection.membership_granted)
consumer.on(MembershipRevoked, projection.membership_revoked)
