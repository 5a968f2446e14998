"""``storyloop testimonials`` (what arrived) and ``storyloop testimonials pull`` (onto a branch)."""

from __future__ import annotations

from datetime import UTC, datetime

import click

from publisher import db
from publisher.cli import Context
from publisher.customers import pull as pull_mod
from publisher.customers import records
from publisher.shop.stores import stores_of

pass_context = click.make_pass_decorator(Context)


@click.group("testimonials", invoke_without_command=True)
@click.pass_context
def testimonials(click_ctx: click.Context) -> None:
    """Testimonials customers sent from a till invitation (none is published from the form)."""
    if click_ctx.invoked_subcommand is not None:
        return
    ctx: Context = click_ctx.find_object(Context)  # type: ignore[assignment]
    engine = db.connect(ctx.settings.database_url)
    db.upgrade(engine)
    found = records.all_received(engine)
    if not found:
        click.echo("no testimonials yet (the till shows an invitation after each redemption)")
    for item in found:
        state = f"pulled to {item.pulled_branch}" if item.pulled_at else "new"
        until = item.consent_until.isoformat() if item.consent_until else "withdrawn"
        click.echo(
            f"{item.invite[:8]}\t{item.submitted_at:%Y-%m-%d}\t{item.store}\t{item.rating}/5\t"
            f"{item.display_name}\t{len(item.photos)} photo(s)\tconsent {item.consent_scope} "
            f"until {until}\t{state}"
        )
    engine.dispose()


@testimonials.command("pull")
@pass_context
def pull(ctx: Context) -> None:
    """Write each new testimonial into content/ on a new git branch, one commit each."""
    settings = ctx.settings
    pull_mod.repository_of(settings.content_path)
    engine = db.connect(settings.database_url)
    db.upgrade(engine)
    now = datetime.now(UTC)
    branch, done = pull_mod.pull(
        settings.content_path,
        records.photo_root(settings.var_dir),
        records.all_received(engine),
        stores_of(settings),
        now,
        now.date(),
    )
    for item in done:
        records.mark_pulled(engine, item.invite, branch, now)
        click.echo(f"{item.path}")
    engine.dispose()
    if done:
        click.echo(f"{len(done)} testimonial(s) on branch {branch}: review, edit, then merge")
    else:
        click.echo("nothing new to pull")


COMMANDS = [testimonials]
