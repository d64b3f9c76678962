"""The applets emails, sent from the applets service's events: invitations (to someone with an
account, or to someone who must register first), an accepted invitation (to the inviter),
an ownership transfer offered, and an ownership transferred (to both owners).

Nothing else in the mailer knows these exist: this module and the templates are the whole of
it (see ``catalogue.py``). The models are the mailer's trimmed copies of the events in
``contracts/applets/``: roles and reasons are read as plain strings, so a role the producer
adds later is written as it is rather than refused.

Subjects name applets, never people: the delivery log keeps subjects after an account is
deleted, and it erases addresses, not other people's texts.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import ClassVar

from tessera.common.messaging import Event
from tessera.mailer.catalogue import SAMPLE_TOKEN, Email, Mail, Occasion, when

__all__ = [
    "InvitationAccepted",
    "InvitationCreated",
    "InvitationReissued",
    "OwnershipTransferRequested",
    "OwnershipTransferred",
]

SAMPLE_APPLET = "Sleep and mood diary"


def _accept_link(at: Occasion, page: str, token: str, *, has_account: bool) -> str:
    """The page that accepts ``token``; for someone without an account, the registration
    page first, which goes on to ``page`` with the token once the account exists (the token
    stays in the fragment either way)."""
    return at.link(page if has_account else f"register?next=/{page}", token)


# --- invitations ----------------------------------------------------------------------------


class InvitationCreated(Event):
    """``applets.invitation.created`` v1 as the mailer reads it."""

    type: ClassVar[str] = "applets.invitation.created"
    version: ClassVar[int] = 1

    applet_name: str
    email: str
    role: str
    locale: str = "en"
    invitee_has_account: bool
    invitee_name: str | None = None
    inviter_name: str
    accept_token: str
    expires_at: str


class InvitationReissued(InvitationCreated):
    """``applets.invitation.reissued`` v1 as the mailer reads it: the same email, with the
    new link (the earlier one no longer works)."""

    type: ClassVar[str] = "applets.invitation.reissued"
    version: ClassVar[int] = 1


def _invitation(event: InvitationCreated, at: Occasion) -> list[Mail]:
    """``invitation`` to someone who can accept at once, ``invitation_register`` to someone
    who must first create an account with the invited address."""
    template = "invitation" if event.invitee_has_account else "invitation_register"
    context = {
        "name": event.invitee_name or "",
        "email": event.email,
        "inviter_name": event.inviter_name,
        "applet_name": event.applet_name,
        "role": event.role,
        "link": _accept_link(
            at, "invitations/accept", event.accept_token, has_account=event.invitee_has_account
        ),
        "expires": when(event.expires_at),
    }
    return [Mail(template, event.email, event.locale, context)]


def _invitations(now: datetime) -> Sequence[InvitationCreated]:
    expires = (now + timedelta(days=7)).isoformat()
    common = {
        "applet_name": SAMPLE_APPLET,
        "role": "reviewer",
        "inviter_name": "Grace Hopper",
        "accept_token": "sample-token",
        "expires_at": expires,
    }
    return [
        InvitationCreated(
            **common, email="ada@example.org", invitee_has_account=True, invitee_name="Ada"
        ),
        InvitationCreated(**common, email="new@example.org", invitee_has_account=False),
    ]


invitation = Email(
    on=(InvitationCreated, InvitationReissued),
    templates=("invitation", "invitation_register"),
    compose=_invitation,
    samples=_invitations,
)


class InvitationAccepted(Event):
    """``applets.invitation.accepted`` v1 as the mailer reads it."""

    type: ClassVar[str] = "applets.invitation.accepted"
    version: ClassVar[int] = 1

    applet_name: str
    role: str
    invitee_name: str
    inviter_id: uuid.UUID
    inviter_email: str | None = None
    inviter_name: str | None = None
    inviter_locale: str = "en"


def _invitation_accepted(event: InvitationAccepted, at: Occasion) -> list[Mail]:
    """To the inviter; none when the inviter's account is gone (no address)."""
    if not event.inviter_email:
        return []
    context = {
        "name": event.inviter_name or "",
        "email": event.inviter_email,
        "invitee_name": event.invitee_name,
        "applet_name": event.applet_name,
        "role": event.role,
        "accepted_at": at.occurred_at,
    }
    return [
        Mail(
            "invitation_accepted",
            event.inviter_email,
            event.inviter_locale,
            context,
            event.inviter_id,
        )
    ]


invitation_accepted = Email(
    on=(InvitationAccepted,),
    templates=("invitation_accepted",),
    compose=_invitation_accepted,
    samples=lambda now: [
        InvitationAccepted(
            applet_name=SAMPLE_APPLET,
            role="reviewer",
            invitee_name="Ada Lovelace",
            inviter_id=uuid.UUID(int=2),
            inviter_email="grace@example.org",
            inviter_name="Grace Hopper",
        )
    ],
)


# --- ownership ------------------------------------------------------------------------------


class OwnershipTransferRequested(Event):
    """``applets.ownership.transfer_requested`` v1 as the mailer reads it."""

    type: ClassVar[str] = "applets.ownership.transfer_requested"
    version: ClassVar[int] = 1

    applet_name: str
    email: str
    locale: str = "en"
    recipient_has_account: bool
    recipient_name: str | None = None
    owner_name: str
    accept_token: str
    expires_at: str


def _transfer_requested(event: OwnershipTransferRequested, at: Occasion) -> list[Mail]:
    """Asks the recipient to accept; someone without an account registers first, as an
    invitee does."""
    context = {
        "name": event.recipient_name or "",
        "email": event.email,
        "owner_name": event.owner_name,
        "applet_name": event.applet_name,
        "has_account": event.recipient_has_account,
        "link": _accept_link(
            at, "transfers/accept", event.accept_token, has_account=event.recipient_has_account
        ),
        "expires": when(event.expires_at),
    }
    return [Mail("ownership_transfer_requested", event.email, event.locale, context)]


transfer_requested = Email(
    on=(OwnershipTransferRequested,),
    templates=("ownership_transfer_requested",),
    compose=_transfer_requested,
    samples=lambda now: [
        OwnershipTransferRequested(
            applet_name=SAMPLE_APPLET,
            email="ada@example.org",
            recipient_has_account=True,
            recipient_name="Ada Lovelace",
            owner_name="Grace Hopper",
            accept_token=SAMPLE_TOKEN,
            expires_at=(now + timedelta(days=7)).isoformat(),
        )
    ],
)


class OwnershipTransferred(Event):
    """``applets.ownership.transferred`` v1 as the mailer reads it."""

    type: ClassVar[str] = "applets.ownership.transferred"
    version: ClassVar[int] = 1

    applet_name: str
    reason: str
    previous_owner_id: uuid.UUID
    previous_owner_email: str | None = None
    previous_owner_name: str | None = None
    previous_owner_locale: str = "en"
    new_owner_id: uuid.UUID
    new_owner_email: str | None = None
    new_owner_name: str | None = None
    new_owner_locale: str = "en"


def _transferred(event: OwnershipTransferred, at: Occasion) -> list[Mail]:
    """One email to each owner that still has an address, each in their own language; the
    text follows ``reason`` (an accepted offer, or the only owner's account deleted)."""
    context = {
        "applet_name": event.applet_name,
        "reason": event.reason,
        "previous_owner_name": event.previous_owner_name or "",
        "new_owner_name": event.new_owner_name or "",
        "transferred_at": at.occurred_at,
        "applet_url": at.url("applets"),
    }
    mails = []
    if event.previous_owner_email:
        mails.append(
            Mail(
                "ownership_transferred_from_you",
                event.previous_owner_email,
                event.previous_owner_locale,
                context | {"name": event.previous_owner_name or ""},
                event.previous_owner_id,
            )
        )
    if event.new_owner_email:
        mails.append(
            Mail(
                "ownership_transferred_to_you",
                event.new_owner_email,
                event.new_owner_locale,
                context | {"name": event.new_owner_name or ""},
                event.new_owner_id,
            )
        )
    return mails


transferred = Email(
    on=(OwnershipTransferred,),
    templates=("ownership_transferred_from_you", "ownership_transferred_to_you"),
    compose=_transferred,
    samples=lambda now: [
        OwnershipTransferred(
            applet_name=SAMPLE_APPLET,
            reason="transfer_accepted",
            previous_owner_id=uuid.UUID(int=2),
            previous_owner_email="grace@example.org",
            previous_owner_name="Grace Hopper",
            new_owner_id=uuid.UUID(int=1),
            new_owner_email="ada@example.org",
            new_owner_name="Ada Lovelace",
        )
    ],
)
