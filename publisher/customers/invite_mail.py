"""The testimonial invitation by email, for a customer who gives an address at the till and
agrees to get it.

The address is used for this one message and kept nowhere: not in the database, not in a file,
not in a log line, not in an error (a failure names the SMTP server and the kind of failure
only). The SMTP server is the email channel's (``STORYLOOP["channels"]["email"]``: ``host``,
``port``, ``username``, ``password`` as ``{"env": NAME}``, ``starttls``, ``sender``), or
``STORYLOOP["invitations"]["smtp"]`` with its own ``sender`` when the owner wants another one.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formataddr, parseaddr
from typing import Any

from publisher import mail as mail_mod
from publisher.errors import StoryloopError
from publisher.settings import MailSection, Settings, resolve_secrets

ADDRESS_RE = re.compile(r"[^@\s<>\"',;]+@[^@\s<>\"',;]+\.[^@\s<>\"',;.]{2,}")
MAX_ADDRESS = 254  # RFC 5321's limit on a forward path


class MailFailed(StoryloopError):
    """The SMTP server could not take the message (its host and port, never the address)."""


@dataclass(frozen=True)
class MailSettings:
    sender: str
    smtp: Mapping[str, Any]

    def __repr__(self) -> str:  # the SMTP password stays out of any log or error
        return f"MailSettings(sender={self.sender!r}, host={self.smtp.get('host')!r})"


def mail_settings(settings: Settings) -> MailSettings | None:
    """Where invitations are sent through; None when no SMTP server is configured."""
    own = settings.engine.invitations or MailSection()
    email = dict(settings.channels.get("email") or {})
    smtp = dict(own.smtp) if own.smtp else resolve_secrets(email)
    if not smtp.get("host"):
        return None
    sender = own.sender or smtp.get("sender") or email.get("sender")
    if not sender:
        return None
    return MailSettings(str(sender), smtp)


def address(text: str) -> str | None:
    """The address a person typed (one, plain), or None."""
    typed = text.strip()
    if not typed or len(typed) > MAX_ADDRESS:
        return None
    _, found = parseaddr(typed)
    return found if found == typed and ADDRESS_RE.fullmatch(found) else None


def message(
    to: str, sender: str, store_name: str, url: str, gettext: Callable[[str], str]
) -> EmailMessage:
    mail = EmailMessage()
    mail["Subject"] = gettext("Tell us about your visit to %(store)s") % {"store": store_name}
    mail["From"] = sender
    mail["To"] = formataddr(("", to))
    lines = [
        gettext("Thank you for your visit to %(store)s.") % {"store": store_name},
        "",
        gettext("If you like, tell other customers about it: this link opens a short form.")
        + " "
        + gettext("It works once, for 60 days, and nothing is published without your consent."),
        "",
        url,
        "",
        gettext("You get this one email because you asked for it at the till; we keep no copy "
                "of your address."),
    ]  # fmt: skip
    mail.set_content("\n".join(lines))
    return mail


def send(mail: EmailMessage, smtp: Mapping[str, Any]) -> None:
    mail_mod.send(mail, smtp, what="invitation", error=MailFailed)
