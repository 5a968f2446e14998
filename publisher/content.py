"""The content model for editors: read a Markdown file's metadata with line numbers and validate it.

The same :func:`validate` runs in ``storyloop check`` and inside the Pelican build, so an editor
sees the same message in both places: ``path:line: Field: what is wrong (what was expected)``.
"""

from __future__ import annotations

import os
import re
import stat
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, tzinfo
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import dateutil.parser

from publisher.errors import StoryloopError
from publisher.model import OfferRules, Testimonial
from publisher.sanitize import dangerous_urls

if TYPE_CHECKING:
    from publisher.settings import EngineSettings

CATEGORIES = ("stories", "testimonials")
MARKDOWN_SUFFIXES = (".md", ".markdown", ".mdown")
KNOWN_FIELDS = {
    "title",
    "date",
    "modified",
    "slug",
    "lang",
    "summary",
    "category",
    "tags",
    "region",
    "channels",
    "publish",
    "offer",
    "offer-stores",
    "offer-until",
    "offer-limit",
    "store",
    "image",
    "image-alt",
    "customer",
    "consent",
    "consent-until",
    "consent-scope",
    "consent-version",
    "verified",
    "rating",
    "status",
    "author",
    "authors",
    "template",
    "save_as",
    "url",
}
CONSENT_SCOPES = ("site", "site, social, newsletter")
HEADLINE = re.compile(r"^headline-([a-z])$")  # Headline-A ... Headline-Z
CHANNEL_TEXT = re.compile(r"^(.+)-text$")
LANG_TAG = re.compile(r"^[a-z]{2,3}(?:[-_][a-z0-9]{2,8})*$", re.IGNORECASE)
SLUG = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
SLUG_MAX = 120
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".gif", ".webp")
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)  # dates outside these are typing mistakes
LATEST = datetime(2199, 12, 31, 23, 59, 59, tzinfo=UTC)
SANE_RANGE = "a date from 1970 to 2199"
# NUL, other C0/C1 controls (a tab is fine) and Unicode line/paragraph separators: each would
# end or split a line in an email header, a post or a feed
CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f-\x9f\u2028\u2029]")
NEWLINE = re.compile(r"\r\n|\r|\n")
ZONE_SUFFIX = re.compile(r"^(?P<when>.+?)\s+(?P<zone>[A-Za-z_]+(?:/[A-Za-z0-9_+\-]+)+|UTC)$")


@dataclass(frozen=True)
class Problem:
    path: str
    line: int
    field: str
    message: str
    expected: str
    severity: str = "error"  # "error" | "warning"

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.field}: {self.message} ({self.expected})"

    def to_json(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "line": self.line,
            "field": self.field,
            "message": self.message,
            "expected": self.expected,
            "severity": self.severity,
        }


@dataclass
class Header:
    """A file's metadata: lower-case field -> value, and the line each field is on."""

    path: str
    values: dict[str, str] = field(default_factory=dict)
    lines: dict[str, int] = field(default_factory=dict)
    names: dict[str, str] = field(default_factory=dict)  # as the editor spelled it
    problems: list[Problem] = field(default_factory=list)  # found while reading the file
    body: str = ""
    body_line: int = 1  # the line the body starts on

    def line(self, key: str) -> int:
        return self.lines.get(key, 1)

    def get(self, key: str) -> str | None:
        value = self.values.get(key)
        return value if value else None


def read_header(path: Path, display: str | None = None) -> Header:
    """Read the ``Key: value`` block at the top of a Markdown file (Pelican's syntax).

    Continuation lines (indented) join the field above, as in Python-Markdown's meta extension.
    A file that is not UTF-8 text, a field given twice and a control character in a value are
    recorded in ``problems`` (a file that cannot be decoded has no fields).
    """
    header = Header(path=display or str(path))
    try:
        data = path.read_bytes()
    except OSError as exc:
        header.problems.append(
            Problem(header.path, 1, "File", f"cannot be read: {exc.strerror}", "a readable file")
        )
        return header
    return header_from(data, header)


def header_from(data: bytes, header: Header) -> Header:
    """:func:`read_header` of a file's bytes already read (the build reads each file once for
    its header and its hash), into ``header`` (its path set)."""
    text = _decode(data, header)
    if text is None:
        return header
    lines = NEWLINE.split(text)
    last: str | None = None
    number = 0
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            break
        if last and line[:1] in (" ", "\t"):
            header.values[last] = f"{header.values[last]} {line.strip()}".strip()
            _control(header, last, line, number)
            continue
        name, sep, value = line.partition(":")
        if not sep or not name.strip() or " " in name.strip():
            number -= 1
            break
        last = name.strip().lower()
        if last in header.lines:
            header.problems.append(
                Problem(
                    header.path,
                    number,
                    name.strip(),
                    f"given twice (first on line {header.lines[last]})",
                    "each field once",
                )
            )
        header.values[last] = value.strip()
        header.lines[last] = number
        header.names[last] = name.strip()
        _control(header, last, value, number)
    header.body_line = number + 1
    header.body = "\n".join(lines[number:])
    return header


def _decode(data: bytes, header: Header) -> str | None:
    """The file as text, or None after recording why it cannot be read as UTF-8."""
    expected = "a Markdown file saved as UTF-8"
    line = 1
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        message = "saved as UTF-16"
    else:
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            line = data.count(b"\n", 0, exc.start) + 1
            if b"\x00" in data:
                message = "holds NUL bytes: a binary file or UTF-16 without a byte-order mark"
                line = 1
            else:
                message = f"not UTF-8: byte 0x{data[exc.start]:02x}"
                if _reads_as(data, "gb18030"):
                    message += " (it reads as GBK/GB18030)"
            header.problems.append(Problem(header.path, line, "File", message, expected))
            return None
        if "\x00" not in text:
            return text
        line = text.count("\n", 0, text.index("\x00")) + 1
        message = "holds a NUL character"
        if text.count("\x00") > 16:
            message, line = "holds NUL bytes: a binary file or UTF-16 without a byte-order mark", 1
    header.problems.append(Problem(header.path, line, "File", message, expected))
    return None


def _reads_as(data: bytes, encoding: str) -> bool:
    try:
        data.decode(encoding)
    except UnicodeDecodeError:
        return False
    return True


def _control(header: Header, key: str, value: str, number: int) -> None:
    found = CONTROL.search(value)
    if found:
        header.problems.append(
            Problem(
                header.path,
                number,
                header.names.get(key, key),
                f"control character U+{ord(found.group()):04X} in the value",
                "plain text without NUL or line separators",
            )
        )


def parse_publish(value: str, default_zone: str) -> tuple[datetime, str]:
    """``2026-11-24 09:30 Asia/Shanghai`` or ISO 8601 with an offset -> (UTC time, zone name).

    A time without a zone is read in the site's ``TIMEZONE``. Raises ValueError with the reason.
    """
    text = value.strip()
    zone_name = default_zone
    match = ZONE_SUFFIX.match(text)
    if match:
        text, zone_name = match.group("when"), match.group("zone")
    try:
        zone: tzinfo = ZoneInfo(zone_name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {zone_name!r}") from None
    try:
        parsed = dateutil.parser.isoparse(text)
    except (ValueError, OverflowError):
        try:
            parsed = dateutil.parser.parse(text)
        except (ValueError, OverflowError):
            raise ValueError(f"cannot read {value!r} as a date and time") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=zone)
    elif match:
        raise ValueError(f"{value!r} gives both an offset and a zone")
    else:
        zone_name = _offset_name(parsed)
    return in_range(parsed, value), zone_name


class OutOfRange(StoryloopError, ValueError):
    """A date that reads, but is outside the years the engine accepts."""


def in_range(when: datetime, value: str) -> datetime:
    """``when`` in UTC, or ValueError when it is outside 1970 to 2199 (also when converting it
    to UTC would leave the calendar, as ``9999-12-31T23:59:59-01:00`` does)."""
    aware = when if when.tzinfo else when.replace(tzinfo=UTC)
    try:
        utc = aware.astimezone(UTC)
    except OverflowError:
        raise OutOfRange(f"{value!r} is outside the years 1970 to 2199") from None
    if not EARLIEST <= utc <= LATEST:
        raise OutOfRange(f"{value!r} is outside the years 1970 to 2199")
    return utc


def _offset_name(when: datetime) -> str:
    """An IANA name for a fixed offset (``Etc/GMT-8`` is UTC+8: POSIX signs are inverted).

    Offsets that are not whole hours have no IANA name; such stories use UTC for windows.
    """
    offset = when.utcoffset()
    seconds = int(offset.total_seconds()) if offset else 0
    if seconds == 0 or seconds % 3600:
        return "UTC"
    return f"Etc/GMT{-seconds // 3600:+d}"


def _parse_date(value: str) -> datetime:
    """ISO dates first (fast, and what editors write); anything dateutil reads after that.
    Raises ValueError for a date outside 1970 to 2199."""
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        parsed = dateutil.parser.parse(value)
    in_range(parsed, value)
    return parsed


def parse_bool(value: str) -> bool | None:
    lowered = value.strip().lower()
    if lowered in ("yes", "true", "1", "y", "是"):
        return True
    if lowered in ("no", "false", "0", "n", "否"):
        return False
    return None


def split_list(value: str | None) -> list[str]:
    """A field's comma-separated names, each interned: every story names the same few
    Channels and stores, and a large build keeps them all."""
    return [sys.intern(item.strip()) for item in (value or "").split(",") if item.strip()]


OFFER_FIELDS = ("offer-stores", "offer-until", "offer-limit")
LIMIT_PART = re.compile(
    r"^(?P<n>\d{1,9}|once)\s*(?:x\s*)?(?P<scope>per code|per customer|in total)$"
)
LIMIT_EXAMPLE = "e.g. 1 per code, 1 per customer, 200 in total"


def parse_offer_limit(value: str) -> dict[str, int]:
    """``1 per code, 2 per customer, 200 in total`` -> {"per_code": 1, ...}; ValueError says why."""
    found: dict[str, int] = {}
    for part in re.split(r"[,;]", value):
        text = " ".join(part.lower().split())
        if not text:
            continue
        match = LIMIT_PART.match(text)
        if not match:
            raise ValueError(f"cannot read {part.strip()!r}")
        count = 1 if match.group("n") == "once" else int(match.group("n"))
        if count < 1:
            raise ValueError(f"{part.strip()!r}: a limit is at least 1")
        key = match.group("scope").replace(" ", "_").replace("in_total", "total")
        if key in found:
            raise ValueError(f"{match.group('scope')!r} is given twice")
        found[key] = count
    if not found:
        raise ValueError("empty")
    return found


def parse_offer_until(value: str, default_zone: str) -> datetime:
    """The instant an offer ends (UTC): a date means through the end of that day, in the site's
    time zone unless one is written; a date-time with a zone ends at that time."""
    text = value.strip()
    match = ZONE_SUFFIX.match(text)
    when, zone = (match.group("when"), match.group("zone")) if match else (text, default_zone)
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", when.strip()):
        day = date.fromisoformat(when.strip())
        try:
            tz = ZoneInfo(zone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {zone!r}") from None
        start = datetime(day.year, day.month, day.day, tzinfo=tz)
        return (start + timedelta(days=1)).astimezone(UTC)
    end, _ = parse_publish(value, default_zone)
    return end


@dataclass(frozen=True)
class Rules:
    """What the settings allow: read once from :class:`publisher.settings.Settings`."""

    channels: frozenset[str]
    regions: frozenset[str] | None
    stores: frozenset[str] | None
    timezone: str
    content_dir: Path
    slug_subs: tuple[tuple[str, str], ...] = ()
    today: date = field(default_factory=lambda: datetime.now(UTC).date())
    testimonial_categories: frozenset[str] = frozenset({"testimonials"})
    fields: frozenset[str] = frozenset()  # the site's own fields, and those Pelican fills in

    def is_testimonial(self, header: Header) -> bool:
        """A role, not a category: a post in one of the testimonial categories, or one that
        names its ``Customer``."""
        category = (header.get("category") or "").lower()
        return bool(header.get("customer")) or category in self.testimonial_categories

    @classmethod
    def from_pelican(cls, pelican: Mapping[str, Any], engine: EngineSettings, root: Path) -> Rules:
        regions = pelican.get("STORYLOOP_REGIONS")
        stores = engine.stores
        return cls(
            channels=frozenset(engine.channels),
            regions=frozenset(regions) if regions else None,
            stores=frozenset(stores) if stores else None,
            timezone=str(pelican.get("TIMEZONE") or engine.timezone),
            content_dir=root / str(pelican.get("PATH", "content")),
            slug_subs=tuple(tuple(s) for s in pelican.get("SLUG_REGEX_SUBSTITUTIONS", ())),  # type: ignore[misc]
            testimonial_categories=frozenset(c.lower() for c in engine.testimonial_categories),
            fields=frozenset(f.lower() for f in engine.fields),
        )


@dataclass(frozen=True)
class StoryFields:
    """A story's header read and checked once: the typed values the build makes a story of.
    ``publish_at`` None means the post's own date; ``channels`` None means the header names
    none, so the category's rule or the default applies."""

    publish_at: datetime | None
    timezone: str
    channels: tuple[str, ...] | None
    variants: dict[str, str]
    overrides: dict[str, str]
    summary: str | None
    region: str | None
    store: str | None
    offer: str | None
    offer_rules: OfferRules | None
    image: str | None
    image_alt: str
    testimonial: Testimonial | None
    verified: str | None


@dataclass(frozen=True)
class Parsed:
    """The one parse of a header: its typed fields, or None when any problem is an error;
    every problem found (errors and warnings, each with file, line and field)."""

    fields: StoryFields | None
    problems: list[Problem]


class _Checker:
    def __init__(self, header: Header, rules: Rules) -> None:
        self.h = header
        self.rules = rules
        self.problems: list[Problem] = []
        self.publish: tuple[datetime, str] | None = None
        self.offer_until: datetime | None = None
        self.offer_limits: dict[str, int] = {}
        self.consent_until: date | None = None

    def add(self, key: str, message: str, expected: str, severity: str = "error") -> None:
        name = self.h.names.get(key) or "-".join(p.capitalize() for p in key.split("-"))
        self.problems.append(
            Problem(self.h.path, self.h.line(key), name, message, expected, severity)
        )

    def run(self) -> list[Problem]:
        self.problems += self.h.problems
        if any(p.field == "File" for p in self.h.problems):
            return self.problems  # nothing else can be read from it
        self.required()
        self.category()
        self.date_fields()
        self.lang()
        self.slug()
        self.places()
        self.offer_fields()
        self.channels()
        self.variants()
        self.image()
        if self.rules.is_testimonial(self.h):
            self.testimonial()
        self.unknown_fields()
        self.body()
        return self.problems

    def required(self) -> None:
        if not self.h.get("title"):
            self.add("title", "missing", "every story needs a Title")

    def category(self) -> None:
        if self.h.get("category") is None:  # any category the site uses; Pelican always sets one
            self.add("category", "missing", "the post's category")

    def date_fields(self) -> None:
        date_value = self.h.get("date")
        if date_value is None:
            self.add("date", "missing", "a date such as 2026-11-24 or 2026-11-24 09:30")
        else:
            try:
                _parse_date(date_value)
            except OutOfRange as exc:
                self.add("date", str(exc), f"{SANE_RANGE}, e.g. 2026-11-24 09:30")
            except (ValueError, OverflowError):
                self.add("date", f"cannot read {date_value!r} as a date", "e.g. 2026-11-24 09:30")
        publish = self.h.get("publish")
        if publish is not None:
            try:
                self.publish = parse_publish(publish, self.rules.timezone)
            except ValueError as exc:
                self.add(
                    "publish",
                    str(exc),
                    "date-time and IANA zone, e.g. 2026-11-24 09:30 Asia/Shanghai",
                )

    def lang(self) -> None:
        value = self.h.get("lang")
        if value is not None and not LANG_TAG.match(value):
            self.add("lang", f"{value!r} is not a language tag", "e.g. zh, en, de, zh-Hant")

    def slug(self) -> None:
        value = self.h.get("slug")
        if value is not None and (len(value) > SLUG_MAX or not SLUG.match(value)):
            self.add(
                "slug",
                f"{value[:60]!r} is not a slug",
                f"lower-case letters, digits and single hyphens, at most {SLUG_MAX} characters",
            )

    def places(self) -> None:
        region, store = self.h.get("region"), self.h.get("store")
        if region and self.rules.regions is not None and region not in self.rules.regions:
            self.add("region", f"unknown region {region!r}", _one_of(self.rules.regions))
        if store and self.rules.stores is not None and store not in self.rules.stores:
            self.add("store", f"unknown store {store!r}", _one_of(self.rules.stores))
        if self.h.get("offer") and not (store or region):
            self.add(
                "offer",
                "an offer without a Store or Region",
                "say where it can be redeemed",
                "warning",
            )

    def offer_fields(self) -> None:
        written = [k for k in OFFER_FIELDS if self.h.get(k)]
        if written and not self.h.get("offer"):
            for key in written:
                self.add(key, "a rule for an offer the story does not make", "add an Offer line")
        for store in split_list(self.h.get("offer-stores")):
            if self.rules.stores is not None and store not in self.rules.stores:
                self.add("offer-stores", f"unknown store {store!r}", _one_of(self.rules.stores))
        until = self.h.get("offer-until")
        if until:
            try:
                self.offer_until = parse_offer_until(until, self.rules.timezone)
            except (ValueError, OverflowError) as exc:
                self.add(
                    "offer-until",
                    str(exc),
                    "the last day, e.g. 2026-12-31, or 2026-12-31 18:00 Europe/Berlin",
                )
        limit = self.h.get("offer-limit")
        if limit:
            try:
                self.offer_limits = parse_offer_limit(limit)
            except ValueError as exc:
                self.add("offer-limit", str(exc), LIMIT_EXAMPLE)

    def channels(self) -> None:
        known = self.rules.channels
        for name in split_list(self.h.get("channels")):
            if name not in known:
                self.add("channels", f"unknown channel {name!r}", _one_of(known, "configured"))
        for key in self.h.values:
            match = CHANNEL_TEXT.match(key)
            if match and match.group(1) not in known:
                self.add(key, f"no channel named {match.group(1)!r}", _one_of(known, "configured"))
            elif match and not self.h.get(key):
                self.add(key, "empty", "the text to post on that channel")

    def variants(self) -> None:
        for key in self.h.values:
            if key.startswith("headline") and not HEADLINE.match(key):
                self.add(key, "not a headline variant", "Headline-A, Headline-B, ...")
            elif HEADLINE.match(key) and not self.h.get(key):
                self.add(key, "empty headline", "the headline text for this variant")

    def image(self) -> None:
        image = self.h.get("image")
        if image is None:
            return
        where = "a path under content/, e.g. images/x.jpg"
        if not inside(self.rules.content_dir, image):
            self.add("image", f"{image!r} is outside the content folder", where)
        elif not (self.rules.content_dir / image).is_file():
            self.add("image", f"file not found: {image}", where)
        elif not image.lower().endswith(IMAGE_SUFFIXES):
            self.add("image", f"{image!r} is not a picture", "a .jpg, .png, .gif or .webp file")
        if not self.h.get("image-alt"):
            self.add("image", "image without alt text", "add Image-Alt describing it", "warning")

    def testimonial(self) -> None:
        if not self.h.get("customer"):
            self.add("customer", "missing", "the customer's name as they agreed to show it")
        consent = parse_bool(self.h.get("consent") or "")
        if consent is not True:
            self.add("consent", "no written consent: never built nor published", "Consent: yes")
        until = self.h.get("consent-until")
        if until is not None:
            try:
                end = dateutil.parser.parse(until).date()
                in_range(datetime(end.year, end.month, end.day, tzinfo=UTC), until)
                self.consent_until = end
            except (ValueError, OverflowError):
                self.add(
                    "consent-until",
                    f"cannot read {until!r} as a date",
                    f"{SANE_RANGE}, e.g. 2030-12-31",
                )
            else:
                if end < self.rules.today:
                    self.add(
                        "consent-until",
                        f"consent ended on {end}: never published again",
                        "renew the customer's consent or remove the testimonial",
                        "warning",
                    )
        rating = self.h.get("rating")
        if rating is not None and not re.fullmatch(r"[1-5]", rating):
            self.add("rating", f"{rating!r} is not a rating", "a whole number from 1 to 5")
        self.verified_visit()

    def verified_visit(self) -> None:
        """Consent-Scope and Verified, as ``storyloop testimonials pull`` writes them."""
        scope = self.h.get("consent-scope")
        if scope is not None and scope not in CONSENT_SCOPES:
            self.add("consent-scope", f"{scope!r} is not a scope", " or ".join(CONSENT_SCOPES))
        if scope == "site" and split_list(self.h.get("channels")):
            self.add(
                "channels",
                "the customer agreed to this website only (Consent-Scope: site)",
                "no Channels: line for this testimonial",
            )
        verified = self.h.get("verified")
        if verified is None:
            return
        store, _, day = verified.partition(" ")
        try:
            date.fromisoformat(day.strip())
        except ValueError:
            self.add("verified", f"cannot read {verified!r}", "<store> <YYYY-MM-DD>")
            return
        if store != self.h.get("store"):
            self.add(
                "verified",
                f"visit at {store!r} but Store is {self.h.get('store')!r}",
                "the same store in Store and Verified",
            )

    def unknown_fields(self) -> None:
        for key in self.h.values:
            if key in KNOWN_FIELDS or key in self.rules.fields:
                continue
            if HEADLINE.match(key) or CHANNEL_TEXT.match(key):
                continue
            if key.startswith("headline"):
                continue
            self.add(key, "unknown field", "see docs/CONTENT.md for the fields", "warning")

    def body(self) -> None:
        for offset, line in enumerate(self.h.body.split("\n")):
            for scheme in dangerous_urls(line):
                self.problems.append(
                    Problem(
                        self.h.path,
                        self.h.body_line + offset,
                        "Body",
                        f"{scheme}: link or source removed from the page",
                        "links to http(s), mailto or tel, or to a file of the site",
                        "warning",
                    )
                )

    def fields(self) -> StoryFields:
        """The values checked above, typed; called only when no problem is an error."""
        h, rules = self.h, self.rules
        publish_at, zone = self.publish or (None, rules.timezone)
        testimonial = None
        if rules.is_testimonial(h):
            rating = h.get("rating")
            testimonial = Testimonial(
                customer=h.get("customer") or "",
                consent=parse_bool(h.get("consent") or "") is True,
                consent_until=self.consent_until,
                rating=int(rating) if rating else None,
                store=h.get("store"),
            )
        return StoryFields(
            publish_at=publish_at,
            timezone=zone,
            channels=tuple(split_list(h.get("channels"))) if "channels" in h.values else None,
            variants={
                k.split("-", 1)[1].upper(): v for k, v in h.values.items() if HEADLINE.match(k)
            },
            overrides={m.group(1): v for k, v in h.values.items() if (m := CHANNEL_TEXT.match(k))},
            summary=h.get("summary"),
            region=h.get("region"),
            store=h.get("store"),
            offer=h.get("offer"),
            offer_rules=self._offer_rules() if h.get("offer") else None,
            image=h.get("image"),
            image_alt=h.values.get("image-alt", ""),
            testimonial=testimonial,
            verified=h.get("verified"),
        )

    def _offer_rules(self) -> OfferRules | None:
        if not any(self.h.get(k) for k in OFFER_FIELDS):
            return None
        limits = self.offer_limits
        return OfferRules(
            stores=tuple(dict.fromkeys(split_list(self.h.get("offer-stores")))),
            until=self.offer_until,
            per_code=limits.get("per_code"),
            per_customer=limits.get("per_customer"),
            total=limits.get("total"),
        )


def inside(folder: Path, relative: str) -> bool:
    """Whether ``relative`` names something inside ``folder`` (after symlinks and ``..``)."""
    if not relative or relative.startswith(("/", "\\")) or "\x00" in relative:
        return False
    normal = os.path.normpath(relative)
    if normal == os.pardir or normal.startswith(os.pardir + os.sep):
        return False
    # With no symbolic link on the way the path is what it says: one lstat a component instead
    # of resolving the folder and the file (a fifth of a large build's checks)
    at = str(folder)
    for part in relative.split(os.sep):
        at = os.path.join(at, part)
        try:
            if stat.S_ISLNK(os.lstat(at).st_mode):
                break
        except OSError:  # nothing there, so no link further on either
            return True
    else:
        return True
    base = folder.resolve()
    return (base / relative).resolve().is_relative_to(base)


def _one_of(values: Iterable[str], word: str = "one of") -> str:
    items = ", ".join(sorted(values)) or "none"
    return f"{word}: {items}"


def parse(header: Header, rules: Rules) -> Parsed:
    """A header read once: every problem with it (cross-file checks are in
    :func:`validate_all`) and, when none is an error, its typed :class:`StoryFields`. Pure:
    the header and the rules in, a value out; ``storyloop check`` and the build both call it."""
    checker = _Checker(header, rules)
    problems = checker.run()
    failed = any(p.severity == "error" for p in problems)
    return Parsed(None if failed else checker.fields(), problems)


def validate(header: Header, rules: Rules) -> list[Problem]:
    """Every problem with one file's metadata (cross-file checks are in :func:`validate_all`)."""
    return parse(header, rules).problems


def slug_of(header: Header, rules: Rules) -> str:
    if header.get("slug"):
        return str(header.get("slug"))
    # Imported here: importing pelican installs its own logger class process-wide, which drops
    # repeated warnings; the engine's long-running processes must not get it.
    from pelican.utils import slugify

    return str(slugify(header.get("title") or "", regex_subs=rules.slug_subs))


def duplicate_slugs(headers: Iterable[Header], rules: Rules) -> list[Problem]:
    seen: dict[str, Header] = {}
    problems = []
    for header in headers:
        slug = slug_of(header, rules)
        first = seen.setdefault(slug, header)
        if first is not header:
            problems.append(
                Problem(
                    header.path,
                    header.line("slug") if "slug" in header.lines else 1,
                    "Slug",
                    f"duplicate slug {slug!r}, also used by {first.path}",
                    "a slug used only once",
                )
            )
    return problems


def validate_all(headers: list[Header], rules: Rules) -> list[Problem]:
    problems = [p for h in headers for p in validate(h, rules)]
    problems += duplicate_slugs(headers, rules)
    return sorted(problems, key=lambda p: (p.path, p.line, p.field))


def excluded(problems: Iterable[Problem]) -> set[str]:
    """Paths that must not be built: no consent, or consent that has ended."""
    return {p.path for p in problems if p.field.lower() in ("consent", "consent-until")}


def content_files(content_dir: Path, article_paths: Iterable[str]) -> list[Path]:
    files: list[Path] = []
    for sub in article_paths:
        base = content_dir / sub
        files += [p for p in base.rglob("*") if p.suffix in MARKDOWN_SUFFIXES and p.is_file()]
    return sorted(files)
