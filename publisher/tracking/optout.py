"""Signed unsubscribe tokens for the email channel's ``List-Unsubscribe`` header (RFC 8058).

The token is the address plus an HMAC over it, so the tracker can honour a one-click
unsubscribe without storing tokens, and nobody can unsubscribe an address they cannot sign.

The key is ``STORYLOOP_SIGNING_KEY``. Without it, tokens are signed with a development key that
is printed right here, so anyone could forge them: such tokens serve previews (the outbox) only.
Live email refuses to start without a real key (:func:`require_signing_key`, `storyloop check`
reports it), the email adapter refuses to send, and a tracker without the key honours no token.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import logging
import os
from collections.abc import Callable

from channels.email import KEY_HINT as KEY_HINT
from channels.email import KEY_MISSING as KEY_MISSING
from publisher.errors import SettingsError
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


def unsubscribe_link(base_url: str, key: Secret) -> Callable[[str], str]:
    """The one-click unsubscribe URL on the tracker at ``base_url`` for an address: what the
    engine hands the email adapter in its context (``ChannelContext.unsubscribe_url``)."""
    base = base_url.rstrip("/")

    def link(address: str) -> str:
        return f"{base}/unsubscribe?t={make_token(address, key)}"

    return link


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
    configured = settings.engine.tracking.signing_key
    if configured is not None:
        return configured
    raw = os.environ.get("STORYLOOP_SIGNING_KEY")
    return Secret(raw, "STORYLOOP_SIGNING_KEY") if raw else None


def live_email_channels(settings: Settings) -> list[str]:
    """Configured email channels that would send for real (not write to the outbox)."""
    from channels.base import ChannelNotFound, load_class
    from publisher.adapters import engine_settings, missing_for

    live = []
    for name, conf in settings.channels.items():
        if str(conf.get("type", name)).split(":")[-1].lower() != "email":
            continue
        try:
            cls = load_class(str(conf["type"]))
        except ChannelNotFound:
            continue  # `check` reports it on its own
        if not missing_for(name, settings, cls, engine_settings(name, settings)):
            live.append(name)
    return live


def signing_key_problems(settings: Settings) -> dict[str, str]:
    """channel name -> why it cannot start, for each live email channel without a real key."""
    if signing_key(settings) is not None:
        return {}
    return {name: KEY_MISSING for name in live_email_channels(settings)}


def require_signing_key(settings: Settings) -> None:
    """Refuse to start the engine while live email has no signing key."""
    problems = signing_key_problems(settings)
    if problems:
        names = ", ".join(f'"{name}"' for name in problems)
        raise SettingsError(f"channel {names}: {KEY_MISSING}", hint=KEY_HINT)
