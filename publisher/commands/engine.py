"""The engine's commands: db upgrade, plan, run, publish, status, retry, cancel, resolve, resume."""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Callable
from datetime import datetime
from typing import Any

import click
from sqlalchemy.engine import Engine

from publisher import ledger, plan, scheduler
from publisher.cli import Context, busy, progress
from publisher.dispatch import Dispatcher, utcnow
from publisher.errors import NotFound, StoryloopError
from publisher.settings import Settings

pass_context = click.make_pass_decorator(Context)


def _when(t: datetime | None) -> str:
    return t.strftime("%Y-%m-%d %H:%M:%S UTC") if t else "-"


def _database(ctx: Context) -> Engine:
    return scheduler.open_database(ctx.settings)


def _with_grace(settings: Settings, hours: float | None) -> Settings:
    if hours is None:
        return settings
    engine = dataclasses.replace(settings.engine, grace_period_hours=hours)
    return dataclasses.replace(settings, engine=engine)


grace_option = click.option(
    "--grace-hours",
    type=float,
    help="Override grace_period_hours: how late a delivery may still go out (e.g. 720 to send "
    "the sample content's past posts in a demo).",
)


# --------------------------------------------------------------------------- db


@click.group("db")
def db_group() -> None:
    """The ledger's database."""


@db_group.command("upgrade")
@pass_context
def db_upgrade(ctx: Context) -> None:
    """Bring the database schema up to date (also done on every start)."""
    from publisher import db

    engine = db.connect(ctx.settings.database_url)
    db.upgrade(engine)
    click.echo(f"database at revision {db.current_revision(engine)}")


# --------------------------------------------------------------------------- plan


@click.command("plan")
@click.option("--apply", "do_apply", is_flag=True, help="Write the plan to the ledger.")
@grace_option
@pass_context
def plan_command(ctx: Context, do_apply: bool, grace_hours: float | None) -> None:
    """Show how the ledger differs from what the content calls for (like `terraform plan`)."""
    settings = _with_grace(ctx.settings, grace_hours)
    engine = _database(ctx)
    watch = scheduler.ManifestWatch(settings.manifest_path)
    now = utcnow()
    wanted = plan.desired(watch.manifest, settings)
    with busy("planning…"), engine.connect() as conn:  # a read: no write lock meanwhile
        result = plan.diff(conn, wanted, now=now, grace=plan.grace_period(settings))
        conn.rollback()
    if do_apply:
        with progress("applying the plan", "deliveries") as on_progress:
            plan.apply_in_steps(engine, result, now=now, on_progress=on_progress)
    _print_plan(result)
    if do_apply:
        click.echo(f"applied: {result.changes} change(s)")
    elif result.changes:
        click.echo("run `storyloop plan --apply` to write these changes")


def _print_plan(result: plan.PlanDiff) -> None:
    for w in result.add:
        click.secho(
            f"  + {w.id}  {_label(w.story, w.channel, w.variant)}  at {_when(w.due_at)}", fg="green"
        )
    for w, old in result.reschedule:
        label = _label(w.story, w.channel, w.variant)
        click.secho(f"  ~ {w.id}  {label}  {_when(old)} -> {_when(w.due_at)}", fg="yellow")
    for row in result.cancel:
        click.secho(
            f"  - {row.id}  {_label(row.story, row.channel, row.variant)}  (story removed)",
            fg="red",
        )
    for w in result.missed:
        label = _label(w.story, w.channel, w.variant)
        click.secho(
            f"  ! {w.id}  {label}  due {_when(w.due_at)}: past the grace period, missed",
            fg="magenta",
        )
    for row, edited in result.sent:
        note = " (edited since; not posted again)" if edited else ""
        click.echo(f"  = {row.id}  {_label(row.story, row.channel, row.variant)}  sent{note}")
    click.echo(
        f"Plan: {len(result.add)} to add, {len(result.reschedule)} to reschedule, "
        f"{len(result.cancel)} to cancel, {len(result.missed)} missed, "
        f"{len(result.sent)} already sent, {result.unchanged} unchanged."
    )


def _label(story: str, channel: str, variant: str | None) -> str:
    return f"{story} → {channel}" + (f" [{variant}]" if variant else "")


# --------------------------------------------------------------------------- run / publish


def refuse_unsafe_channels(settings: Settings) -> None:
    """What `storyloop check` reports as an error stops the engine before it sends anything:
    live email without a signing key, a network reached over plain http://."""
    from channels.base import ALLOW_HTTP_HINT, insecure_endpoints
    from publisher.errors import SettingsError
    from publisher.tracking.optout import require_signing_key

    require_signing_key(settings)
    for name, conf in settings.channels.items():
        insecure = insecure_endpoints(conf)
        if insecure:
            raise SettingsError(f'channel "{name}": {insecure[0]}', hint=ALLOW_HTTP_HINT)


@click.command("run")
@click.option("--serve/--no-serve", default=True, help="Also run the site and tracked-link server.")
@click.option("--host", help="Address the server listens on (default: STORYLOOP tracking.host).")
@click.option("--port", type=int, help="Port the server listens on (default: tracking.port).")
@grace_option
@pass_context
def run_command(
    ctx: Context, serve: bool, host: str | None, port: int | None, grace_hours: float | None
) -> None:
    """Publish each delivery at its time until stopped (SIGTERM/SIGINT stop cleanly)."""
    refuse_unsafe_channels(ctx.settings)
    engine_log = logging.getLogger("publisher")
    if engine_log.getEffectiveLevel() > logging.INFO:
        engine_log.setLevel(logging.INFO)  # a long-running service says what it does
    _say_outboxes(ctx.settings)
    settings = _with_grace(ctx.settings, grace_hours)
    address = scheduler.server_address(settings, host, port)
    scheduler.run(settings, serve=serve, address=address)


def _say_outboxes(settings: Settings) -> None:
    """One line for every channel without credentials, instead of a warning per channel."""
    from publisher.adapters import announce_outboxes

    names = announce_outboxes(settings, settings.var_dir)
    if names:
        folder = os.path.relpath(settings.var_dir / "outbox")
        click.secho(
            f"outbox mode for {len(names)} of {len(settings.channels)} channel(s) "
            f"({', '.join(names)}): no credentials set, so posts are written to "
            f"{folder}/<channel>/; `storyloop channels` says what each one needs",
            fg="yellow",
            err=True,
        )


@click.command("publish")
@click.option("--due", is_flag=True, help="Publish every delivery that is due now (one pass).")
@click.option("--dry-run", is_flag=True, help="Show what would be posted; write nothing.")
@grace_option
@pass_context
def publish_command(ctx: Context, due: bool, dry_run: bool, grace_hours: float | None) -> None:
    """One pass for people who prefer cron: plan, then publish what is due."""
    if not due:
        raise StoryloopError("say which deliveries to publish", hint="storyloop publish --due")
    if not dry_run:
        refuse_unsafe_channels(ctx.settings)
    settings = _with_grace(ctx.settings, grace_hours)
    engine = _database(ctx)
    watch = scheduler.ManifestWatch(settings.manifest_path)
    dispatcher = Dispatcher(engine, settings, watch.stories)
    if dry_run:
        _dry_run(dispatcher)
        return

    def replan() -> None:
        scheduler.apply_plan(engine, watch.manifest, settings, utcnow())

    outcomes = dispatcher.one_pass(replan=replan)  # the scheduler's sweep, once
    summary = ", ".join(f"{n} {k}" for k, n in sorted(outcomes.items())) or "nothing due"
    click.echo(f"publish: {summary}")


def _dry_run(dispatcher: Dispatcher) -> None:
    count = 0
    for id_, channel, post in dispatcher.due_posts():
        count += 1
        click.secho(f"--- {id_} → {channel}", bold=True)
        click.echo(post if isinstance(post, str) else post.text)
    click.echo(f"{count} due (dry run: links shown untracked, nothing written)")


# --------------------------------------------------------------------------- status


@click.command("status")
@pass_context
def status_command(ctx: Context) -> None:
    """Counts by state, what is next, paused channels, and recent failures with reasons."""
    engine = _database(ctx)
    now = utcnow()
    with engine.connect() as conn:
        counts = ledger.counts_by_state(conn)
        upcoming = ledger.upcoming(conn, limit=10)
        paused = ledger.paused_channels(conn, now=now)
        attention = ledger.needing_attention(conn, limit=10)
    click.echo(
        "Deliveries: " + (", ".join(f"{s} {n}" for s, n in sorted(counts.items())) or "none")
    )
    for ch in paused:
        why = ch.paused_reason or f"rate-limited until {_when(ch.blocked_until)}"
        click.secho(f"Channel {ch.channel} is paused: {why}", fg="yellow")
    if upcoming:
        click.echo("Next:")
    for row in upcoming:
        label = _label(row.story, row.channel, row.variant)
        click.echo(f"  {_when(row.next_attempt_at)}  {row.id}  {label}  ({row.state})")
    if attention:
        click.echo("Needs attention:")
    for row in attention:
        label = _label(row.story, row.channel, row.variant)
        click.secho(f"  {row.id}  {label}  {row.state}: {row.last_error or '-'}", fg="red")


# --------------------------------------------------------------------------- by hand


def _by_hand(ctx: Context, id_: str, change: Callable[..., bool], what: str, **kw: Any) -> None:
    engine = _database(ctx)
    with ledger.transaction(engine) as conn:
        row = ledger.get(conn, id_)
        if row is None:
            raise NotFound(f'no delivery "{id_}"', hint="`storyloop status` lists them")
        if not change(conn, id_, now=utcnow(), **kw):
            raise StoryloopError(f"delivery {id_} is {row.state}: cannot {what} it")
    click.echo(f"delivery {id_}: {what} done")


@click.command("retry")
@click.argument("delivery_id")
@pass_context
def retry_command(ctx: Context, delivery_id: str) -> None:
    """Try a failed, missed, cancelled or unknown delivery again, now."""
    _by_hand(ctx, delivery_id, ledger.retry, "retry")


@click.command("cancel")
@click.argument("delivery_id")
@pass_context
def cancel_command(ctx: Context, delivery_id: str) -> None:
    """Never send this delivery (the plan will not bring it back)."""
    _by_hand(ctx, delivery_id, ledger.cancel, "cancel")


@click.command("resolve")
@click.argument("delivery_id")
@click.option("--sent", "sent_url", metavar="URL", help="It did go out: here is the post.")
@click.option("--resend", is_flag=True, help="It did not go out: send it again.")
@pass_context
def resolve_command(ctx: Context, delivery_id: str, sent_url: str | None, resend: bool) -> None:
    """Settle an unknown outcome after checking the network by hand."""
    if bool(sent_url) == resend:
        raise StoryloopError("give exactly one of --sent URL or --resend")
    if sent_url:
        _by_hand(ctx, delivery_id, ledger.resolve_sent, "resolve", url=sent_url)
    else:
        _by_hand(ctx, delivery_id, ledger.resolve_resend, "resend")


@click.command("resume")
@click.argument("channel")
@pass_context
def resume_command(ctx: Context, channel: str) -> None:
    """Lift a channel's pause (after fixing its credentials) or rate-limit hold."""
    settings: Settings = ctx.settings
    settings.channel_settings(channel)
    engine = _database(ctx)
    with ledger.transaction(engine) as conn:
        done = ledger.resume_channel(conn, channel, now=utcnow())
    click.echo(f"channel {channel}: " + ("resumed" if done else "was not paused"))


COMMANDS = [
    db_group,
    plan_command,
    run_command,
    publish_command,
    status_command,
    retry_command,
    cancel_command,
    resolve_command,
    resume_command,
]
