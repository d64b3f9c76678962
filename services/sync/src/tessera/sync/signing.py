"""OpenPGP signatures of protected events, as MISP makes and checks them
(``CryptographicKey::signWithInstanceKey`` / ``verifySignature``), with Sequoia-PGP
(``pysequoia``: no gpg binary, no keyring on disk).

What is signed is the JSON exactly as it travels (the body of ``events/view``, ``events/add``,
``events/edit``) with every whitespace byte removed, as MISP removes it before signing and
verifying; the detached binary signature travels base64-encoded in ``x-pgp-signature``. A
signature verifies when it was made by one of the keys given (their ``key_data``, armored
public keys), by the primary key or a signing subkey.

CPU-bound (hashing a large event): callers run these off the event loop.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass

import pysequoia

__all__ = [
    "SIGNATURE_HEADER",
    "BadSignature",
    "NewKey",
    "canonical",
    "fingerprint_of",
    "from_secret",
    "new_key",
    "sign",
    "verify",
]

SIGNATURE_HEADER = "x-pgp-signature"
_WHITESPACE = re.compile(rb"\s+")


class BadSignature(Exception):
    """The signature is missing, malformed, or made by none of the trusted keys."""


@dataclass(frozen=True)
class NewKey:
    fingerprint: str
    key_data: str
    """the armored public key (what an event's ``CryptographicKey`` carries)"""
    secret: bytes
    """the transferable secret key, binary: seal it before storing it"""


def canonical(data: bytes) -> bytes:
    """What MISP signs of a body: the bytes without any whitespace (``\\s+`` removed)."""
    return _WHITESPACE.sub(b"", data)


def new_key(user_id: str) -> NewKey:
    """A new key (Ed25519 primary key, a signing subkey) for this instance."""
    tsk = pysequoia.Tsk.generate(user_id)
    cert = tsk.extract_certificate()
    return NewKey(fingerprint=cert.fingerprint.upper(), key_data=str(cert), secret=bytes(tsk))


def from_secret(armored: str) -> NewKey:
    """A key given whole (an armored OpenPGP secret key without a passphrase, as
    ``gpg --armor --export-secret-keys`` writes it); ValueError when it is none or cannot
    sign. A key whose primary key signs (``gpg --quick-gen-key NAME ed25519 sign``) makes
    signatures a real MISP verifies (it compares the signer with the primary key)."""
    try:
        tsk = pysequoia.Tsk.from_bytes(armored.encode())
        tsk.signer()
    except RuntimeError as exc:
        raise ValueError(f"not an OpenPGP secret key that can sign: {str(exc)[:200]}") from None
    cert = tsk.extract_certificate()
    return NewKey(fingerprint=cert.fingerprint.upper(), key_data=str(cert), secret=bytes(tsk))


def fingerprint_of(key_data: str) -> str | None:
    """The primary key's fingerprint (upper-case hex, as gpg prints it), None when
    ``key_data`` is no OpenPGP public key."""
    try:
        return str(pysequoia.Cert.from_bytes(key_data.encode()).fingerprint).upper()
    except (RuntimeError, ValueError):
        return None


def sign(secret: bytes, data: bytes) -> str:
    """The base64 detached signature of ``canonical(data)`` by the key ``secret``."""
    signer = pysequoia.Tsk.from_bytes(secret).signer()
    raw = pysequoia.sign(
        signer, canonical(data), mode=pysequoia.SignatureMode.DETACHED, armor=False
    )
    return base64.b64encode(raw).decode()


def verify(data: bytes, signature: str | None, keys: list[str]) -> str:
    """The fingerprint of the trusted key (of ``keys``, armored public keys) that signed
    ``canonical(data)``; :class:`BadSignature` otherwise."""
    if not signature:
        raise BadSignature("no signature was provided")
    try:
        sig = pysequoia.Sig.from_bytes(base64.b64decode(signature, validate=True))
    except (binascii.Error, ValueError, RuntimeError):
        raise BadSignature("malformed signature") from None
    certs = []
    for key_data in keys:
        try:
            certs.append(pysequoia.Cert.from_bytes(key_data.encode()))
        except (RuntimeError, ValueError):
            continue  # an invalid key trusts nothing
    if not certs:
        raise BadSignature("no valid key to verify the signature with")
    try:
        found = pysequoia.verify(bytes=canonical(data), store=lambda _ids: certs, signature=sig)
    except RuntimeError:
        raise BadSignature("the signature does not verify with the event's keys") from None
    if not found.valid_sigs:
        raise BadSignature("the signature does not verify with the event's keys")
    return str(found.valid_sigs[0].certificate).upper()
