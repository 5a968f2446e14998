"""Account commands: ``storyloop user add/list/remove/passwd/set``."""

from __future__ import annotations

import click
from sqlalchemy import Engine

from publisher import db
from publisher.cli import Context
from publisher.tracking import conversions
from publisher.web import accounts

pass_context = click.make_pass_decorator(Context)
LOCALE_HELP = "How money, dates and labels are written for this account (zh_CN, en_US, de_DE, ...)."
TIMEZONE_HELP = "The time zone times are shown in (Europe/Berlin; default: the site's)."


def _database(ctx: Context) -> Engine:
    engine = db.connect(ctx.settings.database_url)
    db.upgrade(engine)
    return engine


def _new_password() -> str:
    """Asked twice, never echoed; read from standard input when it is not a terminal."""
    password: str = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    accounts.check_password(password)
    return password


@click.group("user")
def user() -> None:
    """Accounts that sign in to the till (staff) and the dashboard (owner)."""


@user.command("add")
@click.argument("name")
@click.option("--role", type=click.Choice(accounts.ROLES), required=True)
@click.option("--store", help="The store a staff member works in (a key of STORYLOOP stores).")
@click.option("--locale", help=LOCALE_HELP)
@click.option("--timezone", help=TIMEZONE_HELP)
@pass_context
def add(
    ctx: Context,
    name: str,
    role: str,
    store: str | None,
    locale: str | None,
    timezone: str | None,
) -> None:
    """Add an account; asks for its password."""
    stores = conversions.stores(ctx.settings)
    accounts.check_name(name)
    if locale:
        accounts.check_locale(locale)
    if timezone:
        accounts.check_timezone(timezone)
    engine = _database(ctx)
    made = accounts.add(
        engine, name, role, _new_password(), store, stores, locale=locale, timezone=timezone
    )
    where = f" for store {made.store}" if made.store else ""
    click.echo(f"account {made.name} added: {made.role}{where}{_reads(made)}")


def _reads(account: accounts.Account) -> str:
    parts = [p for p in (account.locale, account.timezone) if p]
    return f", reads {' '.join(parts)}" if parts else ""


@user.command("set")
@click.argument("name")
@click.option("--locale", help=LOCALE_HELP + ' "" sets it back to the page\'s language.')
@click.option("--timezone", help=TIMEZONE_HELP + ' "" sets it back to the site\'s.')
@pass_context
def set_reading(ctx: Context, name: str, locale: str | None, timezone: str | None) -> None:
    """Change how an account reads the figures (its locale and time zone)."""
    if locale is None and timezone is None:
        raise accounts.AccountError("storyloop user set: give --locale, --timezone or both")
    if locale:
        accounts.check_locale(locale)
    if timezone:
        accounts.check_timezone(timezone)
    found = accounts.set_locale(_database(ctx), name, locale=locale, timezone=timezone)
    locale_text = found.locale or "the page's language"
    zone_text = found.timezone or f"the site's ({ctx.settings.timezone})"
    click.echo(f"account {found.name} reads money and dates as {locale_text}, times in {zone_text}")


@user.command("list")
@pass_context
def list_accounts(ctx: Context) -> None:
    """Every account with its role and store."""
    found = accounts.all_accounts(_database(ctx))
    if not found:
        click.echo("no accounts yet (storyloop user add NAME --role owner)")
    for account in found:
        line = f"{account.name}\t{account.role}\t{account.store or '-'}"
        if account.locale or account.timezone:  # how it reads figures, when not the defaults
            line += f"\t{account.locale or '-'}\t{account.timezone or '-'}"
        click.echo(line)


@user.command("remove")
@click.argument("name")
@pass_context
def remove(ctx: Context, name: str) -> None:
    """Remove an account; its sessions end at once."""
    accounts.remove(_database(ctx), name)
    click.echo(f"account {name} removed")


@user.command("passwd")
@click.argument("name")
@pass_context
def passwd(ctx: Context, name: str) -> None:
    """Set a new password; the account's other sessions end."""
    engine = _database(ctx)
    with engine.connect() as conn:
        if accounts.get(conn, name) is None:
            raise accounts.AccountError(f"no account named {name!r}")
    accounts.set_password(engine, name, _new_password())
    click.echo(f"password of {name} changed")


COMMANDS = [user]
