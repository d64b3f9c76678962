"""Auth's rules and errors; no framework imports beyond the problem base."""

from __future__ import annotations

import functools
import hashlib
import secrets
from importlib import resources

from tessera.common.problems import Problem

__all__ = [
    "EmailTaken",
    "InvalidCredentials",
    "InvalidToken",
    "WeakPassword",
    "check_password_policy",
    "common_passwords",
    "hash_token",
    "new_token",
]


class EmailTaken(Problem):
    status = 409
    code = "email_taken"
    title = "An account with this email already exists"


class AccountGone(Problem):
    """The token is genuine but its account was deleted since."""

    status = 401
    code = "unauthorized"
    title = "The account no longer exists"


class InvalidCredentials(Problem):
    status = 401
    code = "invalid_credentials"
    title = "Email or password is wrong"


class WeakPassword(Problem):
    status = 422
    code = "weak_password"
    title = "The password is too weak"


def new_token() -> str:
    """256 bits of randomness, URL-safe."""
    return secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    """Tokens are high-entropy, so one SHA-256 is a sufficient at-rest hash."""
    return hashlib.sha256(token.encode()).hexdigest()


class InvalidToken(Problem):
    status = 400
    code = "invalid_token"
    title = "The link is invalid, expired or already used"


@functools.cache
def common_passwords() -> frozenset[str]:
    """The shipped list of common and breached passwords, lower-cased."""
    text = resources.files("tessera.auth").joinpath("data/common-passwords.txt").read_text()
    return frozenset(
        line.strip().lower() for line in text.splitlines() if line.strip() and line[0] != "#"
    )


def check_password_policy(
    password: str, *, email: str, min_length: int, field: str = "password"
) -> None:
    errors = []
    if len(password) < min_length:
        errors.append(f"must be at least {min_length} characters")
    if password.strip().lower() == email.strip().lower():
        errors.append("must not be the email address")
    if len(set(password)) < 4:
        errors.append("must use more than 3 different characters")
    if password.strip().lower() in common_passwords():
        errors.append("is too common: it appears in lists of breached passwords")
    if errors:
        raise WeakPassword(
            "; ".join(errors),
            errors=[{"field": field, "in": "body", "message": e} for e in errors],
        )
