"""Signed unsubscribe tokens for the email channel's ``List-Unsubscribe`` header (RFC 8058).

The token is the address plus an HMAC over it, so the tracker can honour a one-click
unsubscribe without storing tokens, and nobody can unsubscribe an address they cannot sign.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import logging
import os

from publisher.settings import Secret, Settings

log = logging.getLogger(__name__)

DEVELOPMENT_KEY = "storyloop-development-signing-key"
_warned = False


def _key_bytes(key: Secret | None) -> bytes:
    global _warned
    if key is None:
        if not _warned:
            log.warning(
                "no signing key set (STORYLOOP_SIGNING_KEY): unsubscribe tokens use the public "
                "development key, so anyone can forge them"
            )
            _warned = True
        return DEVELOPMENT_KEY.encode()
    return key.reveal().encode()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(email: str, key: Secret | None) -> bytes:
    message = b"unsubscribe:" + email.encode()
    return hmac.new(_key_bytes(key), message, hashlib.sha256).digest()[:18]


def make_token(email: str, key: Secret | None) -> str:
    address = email.strip().lower()
    return f"{_b64(address.encode())}.{_b64(_mac(address, key))}"


def read_token(token: str, key: Secret | None) -> str | None:
    """The address a token was made for, or None when it is malformed or not ours."""
    if len(token) > 1000 or token.count(".") != 1:
        return None
    encoded, signature = token.split(".")
    try:
        address = _unb64(encoded).decode()
        given = _unb64(signature)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    if not hmac.compare_digest(given, _mac(address, key)):
        return None
    return address


def signing_key(settings: Settings) -> Secret | None:
    """``STORYLOOP["tracking"]["signing_key"]``, else the ``STORYLOOP_SIGNING_KEY`` variable."""
    configured = settings.secret("tracking", "signing_key")
    if configured is not None:
        return configured
    raw = os.environ.get("STORYLOOP_SIGNING_KEY")
    return Secret(raw, "STORYLOOP_SIGNING_KEY") if raw else None
