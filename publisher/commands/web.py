"""Account commands: ``storyloop user add/list/remove/passwd``."""

from __future__ import annotations

import click
from sqlalchemy import Engine

from publisher import db
from publisher.cli import Context
from publisher.tracking import conversions
from publisher.web import accounts

pass_context = click.make_pass_decorator(Context)


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
@pass_context
def add(ctx: Context, name: str, role: str, store: str | None) -> None:
    """Add an account; asks for its password."""
    stores = conversions.stores(ctx.settings)
    accounts.check_name(name)
    engine = _database(ctx)
    made = accounts.add(engine, name, role, _new_password(), store, stores)
    where = f" for store {made.store}" if made.store else ""
    click.echo(f"account {made.name} added: {made.role}{where}")


@user.command("list")
@pass_context
def list_accounts(ctx: Context) -> None:
    """Every account with its role and store."""
    found = accounts.all_accounts(_database(ctx))
    if not found:
        click.echo("no accounts yet (storyloop user add NAME --role owner)")
    for account in found:
        click.echo(f"{account.name}\t{account.role}\t{account.store or '-'}")


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
