"""``storyloop consent``: ended consents and what became of every copy; withdraw, sweep, links."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime

import click
from sqlalchemy.engine import Engine

from publisher import scheduler
from publisher.cli import Context
from publisher.consent import links, removals
from publisher.customers.pull import slug_for
from publisher.customers.records import all_received
from publisher.dispatch import worker_name
from publisher.errors import ManifestError, NotFound, StoryloopError
from publisher.model import Story
from publisher.settings import Settings

pass_context = click.make_pass_decorator(Context)

SAYS = {
    removals.REMOVED: "removed",
    removals.CANCELLED: "cancelled before it went out",
    removals.BY_HAND: "REMOVE BY HAND",
    removals.DONE_BY_HAND: "removed by hand",
    removals.UNKNOWN: "being checked",
    removals.RETRY_WAIT: "will try again",
}


def _stories(settings: Settings) -> Mapping[str, Story]:
    try:
        return scheduler.ManifestWatch(settings.manifest_path).stories()
    except ManifestError:
        return {}


def _database(ctx: Context) -> Engine:
    return scheduler.open_database(ctx.settings)


def listing(engine: Engine) -> list[str]:
    lines = []
    for end, copies in removals.copies(engine):
        lines.append(f"{end.story}\t{end.reason}\t{end.ended_at:%Y-%m-%d %H:%M} UTC\t{end.how}")
        if not copies:
            lines.append("  (no copy was posted or planned)")
        for copy in copies:
            state = SAYS.get(copy.state, "in progress")
            where = f"\t{copy.url}" if copy.url else ""
            why = f"\t{copy.detail}" if copy.detail and copy.state != removals.REMOVED else ""
            lines.append(f"  {copy.id[:10]}\t{copy.channel}\t{state}{where}{why}")
    return lines


@click.group("consent", invoke_without_command=True)
@click.pass_context
def consent(click_ctx: click.Context) -> None:
    """Testimonials whose consent ended, and per copy what was removed or must be by hand."""
    if click_ctx.invoked_subcommand is not None:
        return
    ctx: Context = click_ctx.find_object(Context)  # type: ignore[assignment]
    engine = _database(ctx)
    lines = listing(engine)
    click.echo("\n".join(lines) if lines else "no consent has ended")
    engine.dispose()


@consent.command("list")
@pass_context
def list_(ctx: Context) -> None:
    """The same listing as ``storyloop consent``."""
    engine = _database(ctx)
    lines = listing(engine)
    click.echo("\n".join(lines) if lines else "no consent has ended")
    engine.dispose()


@consent.command("sweep")
@pass_context
def sweep(ctx: Context) -> None:
    """Cancel, remove and check now, as ``storyloop run`` does on every sweep."""
    engine = _database(ctx)
    counts = removals.Remover(engine, ctx.settings, worker_name()).sweep(
        _stories(ctx.settings), datetime.now(UTC)
    )
    said = ", ".join(f"{n} {what}" for what, n in sorted(counts.items()))
    click.echo(said or "nothing to remove")
    for line in listing(engine):
        click.echo(line)
    engine.dispose()


@consent.command("withdraw")
@click.argument("slug")
@click.option("--how", required=True, help='How the customer asked, e.g. "in the shop, 2 Dec"')
@pass_context
def withdraw(ctx: Context, slug: str, how: str) -> None:
    """Record a withdrawal the customer asked for in person, by phone or by mail."""
    engine = _database(ctx)
    received = {slug_for(item): item.invite for item in all_received(engine)}
    if slug not in received and slug not in _stories(ctx.settings):
        raise NotFound(
            f"no testimonial with slug {slug!r}",
            hint="the Slug: line of its file in content/testimonials/",
        )
    if not how.strip():
        raise StoryloopError("--how: say how the customer asked")
    counts = removals.withdraw(engine, slug, how.strip(), datetime.now(UTC), received.get(slug))
    removals.drop_photos(engine, ctx.settings.var_dir, received.get(slug))
    click.echo(
        f"{slug}: consent withdrawn; {counts['cancelled']} pending delivery(ies) cancelled, "
        f"{counts['to remove']} posted copy(ies) to remove (storyloop consent sweep, or the "
        "running engine, does it)"
    )
    engine.dispose()


@consent.command("done")
@click.argument("removal")
@click.option("--note", default="removed by hand", help="What was done, for the record")
@pass_context
def done(ctx: Context, removal: str, note: str) -> None:
    """Mark a copy you removed by hand as done (its id as ``storyloop consent`` shows it)."""
    engine = _database(ctx)
    marked = removals.mark_done_by_hand(engine, removal, datetime.now(UTC), note)
    if not marked:
        raise NotFound(f"no copy {removal!r} waiting to be removed by hand")
    click.echo(f"{len(marked)} copy(ies) marked as removed by hand")
    engine.dispose()


@consent.command("links")
@pass_context
def links_(ctx: Context) -> None:
    """Each customer's private withdrawal link, to send again when they ask for it."""
    engine = _database(ctx)
    kept = links.stored(engine)
    base = ctx.settings.tracking_base_url.rstrip("/")
    for item in all_received(engine):
        token = kept.get(item.invite)
        url = f"{base}{links.PATH}{token}" if token else "(sent before withdrawal links existed)"
        click.echo(f"{slug_for(item)}\t{item.display_name}\t{url}")
    engine.dispose()


COMMANDS = [consent]
