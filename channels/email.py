"""Email newsletter over SMTP: one message per consenting subscriber, text and HTML parts,
RFC 8058 one-click unsubscribe pointing at the tracker.

Each message has a deterministic Message-ID and each recipient done is recorded at once in the
context's state store (the engine's database), so a resend after a failure, on any machine,
skips everyone already served.
"""

from __future__ import annotations

import csv
import hashlib
import html
import logging
import smtplib
import ssl
from collections.abc import Iterator, Mapping
from email.header import Header
from email.message import EmailMessage
from email.policy import Policy
from email.utils import format_datetime, parseaddr
from pathlib import Path
from typing import ClassVar

from channels.base import (
    AuthProblem,
    Channel,
    ContentRejected,
    DeliveryKey,
    Idempotency,
    Kind,
    LengthRule,
    Links,
    Post,
    Receipt,
    Removal,
    Removed,
    RetryLater,
    SettingSpec,
)
from channels.http import CONNECT_ERROR_DELAY, SERVER_ERROR_DELAY
from channels.markup import clean_html, text_with_links
from channels.outbox import safe_filename
from channels.text import bcp47, offer_line, one_line, plain, rewrite_html_links, rewrite_urls
from publisher.model import Story

log = logging.getLogger(__name__)

READ_MORE = {"zh": "阅读全文", "en": "Read the whole story", "de": "Ganze Geschichte lesen"}
UNSUBSCRIBE = {"zh": "退订", "en": "Unsubscribe", "de": "Abbestellen"}
# Said by this adapter when the engine gave it no signed unsubscribe links, and by the engine's
# checks (publisher.tracking.optout) before it starts live email at all.
KEY_MISSING = (
    "live email without STORYLOOP_SIGNING_KEY: its unsubscribe links would be signed with the "
    "public development key, so anyone could forge them"
)
KEY_HINT = "set STORYLOOP_SIGNING_KEY to a long random secret (e.g. `openssl rand -hex 32`)"


def words_for(lang: str, table: Mapping[str, str]) -> str:
    """The email's own words in the story's language (by its primary subtag), else English."""
    return table.get(bcp47(lang).split("-")[0], table["en"])


class _EncodedSubject(str):
    """A subject the email package must not read as encoded words: a literal ``=?`` would be
    decoded by the header parser (and written back as is, for readers to decode); this one is
    written as RFC 2047 encoded words of its own text, so what the reader sees is the title."""

    name = "Subject"

    def fold(self, *, policy: Policy) -> str:
        encoded = Header(str(self), "utf-8", header_name=self.name).encode(linesep=policy.linesep)
        return f"{self.name}: {encoded}{policy.linesep}"


def subject_header(subject: str) -> str:
    """The Subject header's value: one line, and encoded whole when it holds a literal ``=?``."""
    line = one_line(subject)
    return _EncodedSubject(line) if "=?" in line else line


def recipient_hash(address: str) -> str:
    return hashlib.sha256(address.strip().lower().encode()).hexdigest()[:16]


class Email(Channel):
    name: ClassVar[str] = "email"
    setup_url: ClassVar[str] = (
        "https://github.com/storyloop/storyloop/blob/main/docs/CHANNELS.md#email"
    )
    length: ClassVar[LengthRule] = LengthRule(limit=0, counting="none")
    idempotency: ClassVar[Idempotency] = Idempotency.LOOKUP
    utm_medium: ClassVar[str] = "email"
    settings_spec: ClassVar[tuple[SettingSpec, ...]] = (
        SettingSpec("host", "SMTP server host"),
        SettingSpec("sender", 'From address, e.g. "Cedar & Clay <stories@example.com>"'),
        SettingSpec("subscribers", "CSV file with columns email,name,consent (yes/no)"),
        SettingSpec("port", "SMTP port", required=False, kind=Kind.INT, default=587),
        SettingSpec("username", "SMTP login, when the server wants one", required=False),
        SettingSpec("password", "SMTP password", secret=True, required=False),
        SettingSpec(
            "starttls",
            "Upgrade with STARTTLS (when unset: on port 587 only)",
            required=False,
            kind=Kind.BOOL,
        ),
        SettingSpec(
            "timeout",
            "Seconds to wait for the SMTP server",
            required=False,
            kind=Kind.NUMBER,
            default=30.0,
        ),
        SettingSpec(
            "unsubscribe_mailto",
            "Address for unsubscribe e-mails (when unset: the sender's)",
            required=False,
        ),
    )

    # ------------------------------------------------------------------ render

    def render(self, story: Story, variant: str | None, links: Links) -> Post:
        lang = bcp47(story.lang)
        link = links.get(story.url)
        headline = one_line(plain(story.headline(variant)))
        offer = offer_line(story, links.offer_code)
        more = words_for(lang, READ_MORE)
        override = self.override_for(story)
        tracked_html = rewrite_html_links(clean_html(story.html, story.url), links.urls)
        body = rewrite_urls(plain(override), links.urls) if override else ""
        body = body or text_with_links(tracked_html, links.urls)
        text = "\n\n".join(p for p in (headline, body, offer, f"{more}: {link}") if p)
        offer_html = f'<p style="font-weight:bold">{html.escape(offer)}</p>' if offer else ""
        markup = (
            f'<html lang="{html.escape(lang)}"><body>'
            f"<h1>{html.escape(headline)}</h1>\n{tracked_html}\n"
            f'{offer_html}<p><a href="{html.escape(link)}">{html.escape(more)}</a></p>'
            "</body></html>"
        )
        payload = {"subject": headline, "text": text, "html": markup, "lang": lang}
        return Post(self.instance_name, text, payload)

    # ------------------------------------------------------------------ subscribers

    def _path(self, setting: str) -> Path:
        path = Path(str(self.settings[setting]))
        if path.is_absolute():
            return path
        root = self.settings.get("site_root")
        return (Path(str(root)) if root else self.context.content_dir.parent) / path

    def subscribers(self) -> list[str]:
        """Addresses with consent=yes, minus opt-outs, each once, in file order."""
        optouts = {a.lower() for a in self.context.optouts()}
        seen: dict[str, None] = {}
        for address in self._consenting():
            if address not in optouts:
                seen.setdefault(address, None)
        return list(seen)

    def _consenting(self) -> Iterator[str]:
        path = self._path("subscribers")
        try:
            fh = path.open(encoding="utf-8-sig", newline="")
        except FileNotFoundError:
            raise self.error(ContentRejected, f"{path}: subscribers file not found") from None
        with fh:
            for line, row in enumerate(csv.DictReader(fh), start=2):
                address = parseaddr((row.get("email") or "").strip())[1].lower()
                if "@" not in address:
                    log.warning("%s:%d: email: not an address, skipped", path, line)
                    continue
                if (row.get("consent") or "").strip().lower() == "yes":
                    yield address

    # ------------------------------------------------------------------ sending

    def _sent_scope(self, key: DeliveryKey) -> str:
        """One state scope per delivery: a recipient's hash is a key in it once sent to."""
        return f"email/{self.instance_name}/{key.id}"

    def _sent(self, key: DeliveryKey) -> set[str]:
        return set(self.context.state.items(self._sent_scope(key)))

    def _mark(self, key: DeliveryKey, address: str) -> None:
        self.context.state.put(self._sent_scope(key), recipient_hash(address), True)

    def publish(self, post: Post, key: DeliveryKey) -> Receipt:
        if self.context.unsubscribe_url is None:
            raise self.error(AuthProblem, f"{KEY_MISSING} ({KEY_HINT})")
        done = self._sent(key)
        todo = [a for a in self.subscribers() if recipient_hash(a) not in done]
        sent, refused = 0, 0
        if todo:
            with self._connect() as smtp:
                for address in todo:
                    if self._send_one(smtp, post, key, address):
                        sent += 1
                    else:
                        refused += 1
                    self._mark(key, address)
        self.context.state.put(f"email/{self.instance_name}", f"done/{key.id}", True)
        extra = {"sent": sent, "refused": refused, "skipped": len(done)}
        return Receipt(remote_id=key.id, url=None, extra=extra)

    def lookup(self, key: DeliveryKey) -> Receipt | None:
        if self.context.state.get(f"email/{self.instance_name}", f"done/{key.id}"):
            return Receipt(remote_id=key.id, url=None, extra={"skipped": len(self._sent(key))})
        return None

    def _connect(self) -> smtplib.SMTP:
        port = int(self.settings["port"])
        host = str(self.settings["host"])
        now = self.context.now()
        try:
            smtp = smtplib.SMTP(host, port, timeout=float(self.settings["timeout"]))
            if self.settings.get("starttls", port == 587):
                smtp.starttls(context=ssl.create_default_context())
            if self.settings.get("username"):
                smtp.login(str(self.settings["username"]), self.secret("password"))
        except smtplib.SMTPAuthenticationError as exc:
            raise self.error(AuthProblem, f"SMTP login refused: {exc.smtp_code}") from None
        except (OSError, smtplib.SMTPException) as exc:
            raise self.error(
                RetryLater,
                f"cannot reach SMTP server {host}:{port}: {type(exc).__name__}",
                retry_at=now + CONNECT_ERROR_DELAY,
            ) from None
        return smtp

    def _send_one(self, smtp: smtplib.SMTP, post: Post, key: DeliveryKey, address: str) -> bool:
        """True when accepted, False when this one recipient was refused for good."""
        message = self.message(post, key, address)
        try:
            smtp.send_message(message)
        except smtplib.SMTPRecipientsRefused as exc:
            code = next(iter(exc.recipients.values()))[0]
            if code >= 500:
                log.warning("%s: recipient refused (%d), skipped", self.instance_name, code)
                return False
            raise self._smtp_failure(code, "recipient deferred") from None
        except smtplib.SMTPResponseException as exc:
            raise self._smtp_failure(exc.smtp_code, str(exc.smtp_error[:200])) from None
        except (OSError, smtplib.SMTPServerDisconnected) as exc:
            raise self.error(
                RetryLater,
                f"SMTP connection lost: {type(exc).__name__}",
                retry_at=self.context.now() + CONNECT_ERROR_DELAY,
            ) from None
        return True

    def _smtp_failure(self, code: int, text: str) -> Exception:
        message = f"SMTP {code}: {text}"
        if 400 <= code < 500:
            return self.error(RetryLater, message, retry_at=self.context.now() + SERVER_ERROR_DELAY)
        return self.error(ContentRejected, message)

    def message(self, post: Post, key: DeliveryKey, address: str) -> EmailMessage:
        sender = str(self.settings["sender"])
        domain = parseaddr(sender)[1].rpartition("@")[2] or "storyloop.invalid"
        msg = EmailMessage()
        msg["From"] = sender
        msg["To"] = address
        msg["Subject"] = subject_header(str(post.payload["subject"]))
        msg["Date"] = format_datetime(self.context.now())
        msg["Message-ID"] = f"<{safe_filename(key.id)}.{recipient_hash(address)}@{domain}>"
        link = self._unsubscribe_link(address)
        mailbox = str(self.settings.get("unsubscribe_mailto") or parseaddr(sender)[1])
        msg["List-Unsubscribe"] = f"<{link}>, <mailto:{mailbox}?subject=unsubscribe>"
        msg["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
        label = words_for(str(post.payload.get("lang") or "en"), UNSUBSCRIBE)
        msg.set_content(f"{post.payload['text']}\n\n-- \n{label}: {link}\n")
        footer = f'<p style="font-size:small"><a href="{html.escape(link)}">{label}</a></p>'
        msg.add_alternative(
            str(post.payload["html"]).replace("</body>", footer + "</body>"), subtype="html"
        )
        msg["Content-Language"] = str(post.payload.get("lang") or "en")  # set_content drops it
        return msg

    def _unsubscribe_link(self, address: str) -> str:
        make = self.context.unsubscribe_url
        if make is None:
            raise self.error(AuthProblem, f"{KEY_MISSING} ({KEY_HINT})")
        return make(address)

    def delete(self, receipt: Receipt) -> Removal:
        """An e-mail sits in each reader's mailbox once delivered: nothing can call it back."""
        return Removal(
            Removed.BY_HAND,
            "e-mail cannot be recalled: it stays in the subscribers' mailboxes; send no more",
        )
