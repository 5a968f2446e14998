"""People who sign in: the owner (every store, the figures) and staff (one store's till).

Passwords are kept as argon2id hashes (argon2-cffi's defaults, re-hashed when they change).
Failed logins are counted per account in the database, so every worker process and every till
behind one shop's NAT sees the same count: after a few failures the account waits, longer each
time, however many addresses the guesses come from.

Each account may also carry a locale (``de_DE``: how money, dates and labels are written for
it) and a time zone (the site's when unset); see :func:`check_locale` and :func:`set_locale`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import Enum
from functools import cache
from typing import Any
from zoneinfo import available_timezones

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from babel import Locale, UnknownLocaleError
from sqlalchemy import Connection, Engine, delete, select, update

from publisher.errors import NotFound, StoryloopError
from publisher.web import i18n
from publisher.web.schema import accounts

ROLES = ("owner", "staff")
NAME_RE = re.compile(r"[a-z0-9][a-z0-9._-]{0,62}")
MIN_PASSWORD = 10
FREE_FAILURES = 5  # failures before the account has to wait
FIRST_WAIT = timedelta(seconds=30)
LONGEST_WAIT = timedelta(minutes=15)

_hasher = PasswordHasher()


@cache
def _dummy_hash() -> str:
    """Verified against when the name is unknown, so a wrong name takes as long as a wrong
    password (made on first use: hashing costs tens of milliseconds at every start)."""
    return _hasher.hash("storyloop: no such account")


class AccountError(StoryloopError):
    """An account command was given something it cannot use."""


@dataclass(frozen=True)
class Account:
    name: str
    role: str
    store: str | None
    session_version: int
    locale: str | None = None  # a Babel locale such as de_DE; None: the page's language
    timezone: str | None = None  # an IANA zone; None: the site's

    @property
    def is_owner(self) -> bool:
        return self.role == "owner"

    def may_use(self, store: str) -> bool:
        """Owners act for every store, staff for their own."""
        return self.is_owner or self.store == store


class Login(Enum):
    OK = "ok"
    WRONG = "wrong"  # unknown name or wrong password: the same answer for both
    WAIT = "wait"  # too many failures: the account waits


@dataclass(frozen=True)
class LoginResult:
    outcome: Login
    account: Account | None = None
    wait_seconds: int = 0


def check_name(name: str) -> str:
    if not NAME_RE.fullmatch(name):
        raise AccountError(
            f"account name {name!r}: expected lower-case letters, digits, '.', '_' or '-' "
            "(up to 63, starting with a letter or digit)"
        )
    return name


def check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise AccountError(f"password: at least {MIN_PASSWORD} characters, please")


def check_locale(tag: str) -> str:
    """``de_DE``, ``de-CH``, ``zh_Hant_TW`` -> Babel's canonical name; its language must be one
    the pages speak (labels come from that language's catalogue)."""
    try:
        found = Locale.parse(tag.strip().replace("-", "_"))
    except (ValueError, UnknownLocaleError, TypeError):
        found = None
    if found is None or found.language not in i18n.LANGUAGES:
        raise AccountError(
            f"--locale {tag!r}: expected a locale of Chinese, English or German, "
            "such as zh_CN, zh_TW, en_GB, en_US, de_DE or de_CH"
        )
    return str(found)


@cache
def time_zones() -> frozenset[str]:
    """Every IANA zone name ``zoneinfo`` knows here."""
    return frozenset(available_timezones())


def check_timezone(name: str) -> str:
    """An IANA time zone name that ``zoneinfo`` knows."""
    if name.strip() not in time_zones():
        raise AccountError(
            f"--timezone {name!r}: expected a time zone such as Asia/Shanghai or Europe/Berlin"
        )
    return name.strip()


def _account(row: Any) -> Account:
    mapping = row._mapping
    return Account(
        row.name,
        row.role,
        row.store,
        int(row.session_version),
        mapping.get("locale"),
        mapping.get("timezone"),
    )


def add(
    engine: Engine,
    name: str,
    role: str,
    password: str,
    store: str | None,
    stores: Mapping[str, Any],
    *,
    locale: str | None = None,
    timezone: str | None = None,
) -> Account:
    check_name(name)
    locale = check_locale(locale) if locale else None
    timezone = check_timezone(timezone) if timezone else None
    if role not in ROLES:
        raise AccountError(f"--role {role!r}: expected owner or staff")
    if role == "staff" and not store:
        raise AccountError("--store: staff need the store they work in", hint=_known(stores))
    if store and store not in stores:
        raise AccountError(f"--store {store!r}: unknown store", hint=_known(stores))
    if role == "owner" and store:
        raise AccountError("--store: an owner sees every store; leave it out")
    check_password(password)
    row = {
        "name": name,
        "role": role,
        "store": store,
        "password_hash": _hasher.hash(password),
        "failed_logins": 0,
        "session_version": 1,
        "created_at": datetime.now(UTC),
        "locale": locale,
        "timezone": timezone,
    }
    with engine.begin() as conn:
        if conn.execute(select(accounts.c.name).where(accounts.c.name == name)).first():
            raise AccountError(f"account {name!r} exists already (storyloop user passwd {name})")
        conn.execute(accounts.insert().values(**row))
    return Account(name, role, store, 1, locale, timezone)


def _known(stores: Mapping[str, Any]) -> str:
    return "stores: " + (", ".join(sorted(stores)) or "none configured in STORYLOOP['stores']")


def all_accounts(engine: Engine) -> list[Account]:
    with engine.connect() as conn:
        rows = conn.execute(select(accounts).order_by(accounts.c.name))
        return [_account(r) for r in rows]


def get(conn: Connection, name: str) -> Account | None:
    row = conn.execute(select(accounts).where(accounts.c.name == name)).first()
    return _account(row) if row else None


def remove(engine: Engine, name: str) -> None:
    with engine.begin() as conn:
        if not conn.execute(delete(accounts).where(accounts.c.name == name)).rowcount:
            raise NotFound(f"no account named {name!r}")


def set_password(engine: Engine, name: str, password: str) -> None:
    """A new password; every session signed in with the old one ends."""
    check_password(password)
    values = {
        "password_hash": _hasher.hash(password),
        "session_version": accounts.c.session_version + 1,
        "failed_logins": 0,
        "locked_until": None,
    }
    with engine.begin() as conn:
        done = conn.execute(update(accounts).where(accounts.c.name == name).values(**values))
        if not done.rowcount:
            raise NotFound(f"no account named {name!r}")


def set_locale(
    engine: Engine, name: str, *, locale: str | None = None, timezone: str | None = None
) -> Account:
    """Change how the account reads figures. ``None`` leaves a value as it is; ``""`` sets it
    back to the default (the page's language, the site's time zone). Sessions go on."""
    values: dict[str, str | None] = {}
    if locale is not None:
        values["locale"] = check_locale(locale) if locale.strip() else None
    if timezone is not None:
        values["timezone"] = check_timezone(timezone) if timezone.strip() else None
    with engine.begin() as conn:
        if values:
            conn.execute(update(accounts).where(accounts.c.name == name).values(**values))
        found = get(conn, name)
    if found is None:
        raise NotFound(f"no account named {name!r}")
    return found


def _wait(failures: int) -> timedelta:
    if failures < FREE_FAILURES:
        return timedelta(0)
    wait: timedelta = FIRST_WAIT * 2 ** (failures - FREE_FAILURES)
    return min(wait, LONGEST_WAIT)


def authenticate(engine: Engine, name: str, password: str) -> LoginResult:
    now = datetime.now(UTC)
    with engine.begin() as conn:
        row = conn.execute(select(accounts).where(accounts.c.name == name)).first()
        if row is None:
            _verify(_dummy_hash(), password)
            return LoginResult(Login.WRONG)
        locked = _aware(row.locked_until)
        if locked and locked > now:
            return LoginResult(Login.WAIT, wait_seconds=int((locked - now).total_seconds()) + 1)
        if not _verify(row.password_hash, password):
            failures = int(row.failed_logins) + 1
            wait = _wait(failures)
            locked_until = now + wait if wait else None
            conn.execute(
                update(accounts)
                .where(accounts.c.name == name)
                .values(failed_logins=failures, locked_until=locked_until)
            )
            return LoginResult(Login.WRONG, wait_seconds=int(wait.total_seconds()))
        done: dict[str, object] = {"failed_logins": 0, "locked_until": None}
        if _hasher.check_needs_rehash(row.password_hash):
            done["password_hash"] = _hasher.hash(password)
        conn.execute(update(accounts).where(accounts.c.name == name).values(**done))
        return LoginResult(Login.OK, _account(row))


def _verify(hashed: str, password: str) -> bool:
    try:
        return _hasher.verify(hashed, password)
    except (VerificationError, InvalidHashError):
        return False


def _aware(when: datetime | None) -> datetime | None:
    """SQLite hands timestamps back without their zone; they were written in UTC."""
    if when is None:
        return None
    return when if when.tzinfo else when.replace(tzinfo=UTC)
