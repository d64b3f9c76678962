"""The events the mailer handles: one consumer per event of each declared email (see
``catalogue.py``), and the erasure of a deleted account's address."""

from __future__ import annotations

from tessera.common.consumers import Consumer
from tessera.mailer import catalogue, service
from tessera.mailer.events import UserDeleted

__all__ = ["consumer"]

consumer = Consumer()
for _email in catalogue.emails():
    _send = service.handler(_email)
    for _event in _email.on:
        # mail is sent with no transaction open: each delivery row makes its handler idempotent
        consumer.on(_event, _send, transaction=False)
consumer.on(UserDeleted, service.forget_user)
