"""Remote servers' API keys at rest: encrypted (Fernet: AES-128-CBC + HMAC-SHA256) with a key
derived from ``SYNC__SERVER_KEY``; decrypted only to talk to the server, never logged nor
answered (``servers/index`` shows a hint: the key's last four characters)."""

from __future__ import annotations

import base64
import hashlib

from cryptography.fernet import Fernet, InvalidToken

__all__ = ["HINTED", "KeyBox", "UnreadableKey"]

HINTED = "..."
"""how a key shown in place of a stored key starts (its last four characters follow)"""


class UnreadableKey(Exception):
    """A stored key does not decrypt: ``SYNC__SERVER_KEY`` changed since it was stored."""


class KeyBox:
    def __init__(self, secret: str) -> None:
        digest = hashlib.sha256(secret.encode()).digest()
        self._fernet = Fernet(base64.urlsafe_b64encode(digest))

    def seal(self, authkey: str) -> bytes:
        return self._fernet.encrypt(authkey.encode())

    def open(self, sealed: bytes) -> str:
        try:
            return self._fernet.decrypt(sealed).decode()
        except InvalidToken as exc:
            raise UnreadableKey("the server's key does not decrypt with SYNC__SERVER_KEY") from exc

    @staticmethod
    def hint(authkey: str) -> str:
        return f"{HINTED}{authkey[-4:]}" if len(authkey) > 8 else HINTED
