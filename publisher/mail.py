"""One way to hand a message to the configured SMTP server, for the engine's own mail (the
owner's digest, a customer's invitation); the email channel has its own client for newsletters."""

from __future__ import annotations

import smtplib
import ssl
from collections.abc import Mapping
from email.message import EmailMessage
from typing import Any

from publisher.errors import StoryloopError
from publisher.settings import Secret


def send(
    message: EmailMessage,
    smtp: Mapping[str, Any],
    *,
    what: str,
    error: type[StoryloopError] = StoryloopError,
) -> None:
    """Send ``message`` through ``smtp`` (host, port, starttls, username, password, timeout).
    A failure raises ``error`` naming ``what`` was sent and the server, never an address."""
    host, port = str(smtp["host"]), int(smtp.get("port") or 587)
    try:
        with smtplib.SMTP(host, port, timeout=float(smtp.get("timeout", 30))) as server:
            if smtp.get("starttls", port == 587):
                server.starttls(context=ssl.create_default_context())
            if smtp.get("username"):
                password = smtp.get("password")
                secret = password.reveal() if isinstance(password, Secret) else str(password or "")
                server.login(str(smtp["username"]), secret)
            server.send_message(message)
    except (OSError, smtplib.SMTPException) as exc:
        raise error(
            f"{what}: cannot send through SMTP server {host}:{port}: {type(exc).__name__}"
        ) from None
