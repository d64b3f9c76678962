"""The events the mailer handles: each handler is its use case (see ``service.py``)."""

from __future__ import annotations

from tessera.common.consumers import Consumer
from tessera.mailer import service
from tessera.mailer.events import (
    AccountLocked,
    EmailVerificationRequested,
    LoginLinkRequested,
    PasswordChanged,
    PasswordRecoveryRequested,
    UserDeleted,
    UserRegistered,
)

__all__ = ["consumer"]

consumer = Consumer()
# mail is sent with no transaction open: each delivery row makes its handler idempotent
consumer.on(UserRegistered, service.send_verification, transaction=False)
consumer.on(EmailVerificationRequested, service.send_verification, transaction=False)
consumer.on(PasswordRecoveryRequested, service.send_password_reset, transaction=False)
consumer.on(LoginLinkRequested, service.send_login_link, transaction=False)
consumer.on(PasswordChanged, service.send_password_changed, transaction=False)
consumer.on(AccountLocked, service.send_account_locked, transaction=False)
consumer.on(UserDeleted, service.forget_user)
