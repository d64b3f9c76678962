"""The events the mailer handles: each handler is its use case, in a claimed unit of work."""

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
consumer.on(UserRegistered, service.send_verification)
consumer.on(EmailVerificationRequested, service.send_verification)
consumer.on(PasswordRecoveryRequested, service.send_password_reset)
consumer.on(LoginLinkRequested, service.send_login_link)
consumer.on(PasswordChanged, service.send_password_changed)
consumer.on(AccountLocked, service.send_account_locked)
consumer.on(UserDeleted, service.forget_user)
