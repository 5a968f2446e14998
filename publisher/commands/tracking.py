"""Tracking commands: serve, ingest, redeem, import-sales, report, poster, metrics."""

from __future__ import annotations

import json
import logging
import multiprocessing
import os
import shutil
import sys
import textwrap
import threading
from datetime import date
from pathlib import Path

import click
from sqlalchemy import Engine

from publisher import db, processes
from publisher.cli import Context, progress
from publisher.errors import NotFound, StoryloopError
from publisher.manifest import load_manifest
from publisher.tracking import ingest as ingest_mod
from publisher.tracking import offers, report
from publisher.tracking.journal import journal_dir

pass_context = click.make_pass_decorator(Context)
log = logging.getLogger(__name__)


def _database(ctx: Context) -> Engine:
    engine = db.connect(ctx.settings.database_url)
    db.upgrade(engine)
    return engine


# --------------------------------------------------------------------------- serve


def _ingest_forever(engine: Engine, directory: Path, every: float, stop: threading.Event) -> None:
    while not stop.wait(every):
        try:
            ingest_mod.ingest(engine, directory)
        except Exception:
            log.exception("ingesting the click journal failed; trying again in %ss", every)


@click.command("serve")
@click.option("--host", help="Address to listen on (default: STORYLOOP tracking.host).")
@click.option("--port", type=int, help="Port (default: STORYLOOP tracking.port).")
@click.option("--workers", type=int, default=1, show_default=True, help="Worker processes.")
@click.option(
    "--ingest-every", type=float, default=5.0, show_default=True, help="Seconds between ingests."
)
@pass_context
def serve(
    ctx: Context, host: str | None, port: int | None, workers: int, ingest_every: float
) -> None:
    """Serve tracked links, the conversion APIs, unsubscribe, and the site (granian)."""
    from granian import Granian
    from granian.constants import Interfaces

    settings = ctx.settings
    tracking = settings.engine.tracking
    processes.die_with_parent()  # started by `storyloop run`: go when it goes
    address = host or tracking.host
    port = port or tracking.port
    processes.ensure_port_free(address, port)
    engine = _database(ctx)
    os.environ["STORYLOOP_SETTINGS"] = str(settings.source)
    os.environ.update(processes.child_env({}))  # granian's workers go when we go
    stop = threading.Event()
    directory = journal_dir(settings.var_dir)
    thread = threading.Thread(
        target=_ingest_forever, args=(engine, directory, ingest_every, stop), daemon=True
    )
    thread.start()
    # Workers start fresh (spawn), not as forks of this process with its ingest thread and
    # database connections.
    multiprocessing.set_start_method("spawn", force=True)
    server = Granian(
        "publisher.tracking.server:create_app",
        factory=True,
        interface=Interfaces.ASGI,
        address=address,
        port=port,
        workers=workers,
        log_access=False,
    )
    try:
        server.serve()
    finally:
        stop.set()
        thread.join(timeout=30)
        ingest_mod.ingest(engine, directory)


# --------------------------------------------------------------------------- ingest


@click.command("ingest")
@pass_context
def ingest(ctx: Context) -> None:
    """Move journalled clicks into the database (also done every few seconds by serve)."""
    engine = _database(ctx)
    with progress("ingesting clicks", "bytes") as on_progress:
        result = ingest_mod.ingest(
            engine, journal_dir(ctx.settings.var_dir), on_progress=on_progress
        )
    click.echo(
        f"{result.read} click(s) read from {result.files} journal file(s), "
        f"{result.inserted} new, {result.skipped} skipped"
    )


# --------------------------------------------------------------------------- offline


@click.command("redeem")
@click.argument("code")
@click.option("--value", required=True, help="Amount paid, e.g. 299 or 299.50.")
@click.option("--store", help="Store id from STORYLOOP stores, e.g. xiamen-1.")
@click.option("--currency", help="Three-letter code (default: the store's, or tracking.currency).")
@click.option(
    "--receipt",
    "--order-id",
    "order_id",
    help="The till's receipt number: the sale is kept once per store and receipt.",
)
@pass_context
def redeem(
    ctx: Context,
    code: str,
    value: str,
    store: str | None,
    currency: str | None,
    order_id: str | None,
) -> None:
    """Record an in-store sale made with an offer code."""
    engine = _database(ctx)
    fresh = offers.redeem(
        engine,
        ctx.settings,
        code=code,
        value=value,
        store=store,
        currency=currency,
        order_id=order_id,
    )
    click.echo("redemption recorded" if fresh else "already recorded (same store and receipt)")


@click.command("import-sales")
@click.argument("file", type=click.Path(path_type=Path))
@click.option(
    "--encoding", help="The file's encoding (e.g. gbk, utf-16, latin-1); detected when not given."
)
@pass_context
def import_sales(ctx: Context, file: Path, encoding: str | None) -> None:
    """Import a till export (CSV: date,code,order_id,value,currency,store)."""
    engine = _database(ctx)
    with progress(f"importing {file.name}", "lines") as on_progress:
        result = offers.import_sales(engine, ctx.settings, file, encoding, on_progress)
    how = "detected; --encoding overrides" if result.detected else "as given"
    click.echo(f"{file}: read as {result.encoding} ({how})")
    for line in result.errors:
        click.secho(line, fg="red", err=True)
    click.echo(
        f"{result.imported} imported, {result.duplicates} already there, "
        f"{len(result.errors)} bad row(s)"
    )
    if result.without_receipt:
        lines = ", ".join(str(n) for n in result.without_receipt[:20])
        more = " ..." if len(result.without_receipt) > 20 else ""
        click.echo(
            f"{len(result.without_receipt)} row(s) without a receipt number (line {lines}{more}): "
            "each kept as its own sale, identical rows once; add order_id to tell sales apart"
        )
    if result.errors:
        raise SystemExit(1)


# --------------------------------------------------------------------------- report


@click.command("report")
@click.option("--by", "by", default="story,channel", show_default=True, help="Group by.")
@click.option("--since", help="Only activity from this day (YYYY-MM-DD, the site's time zone).")
@click.option("--until", help="Only activity up to this day, inclusive (YYYY-MM-DD).")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "csv", "json", "html"]),
    default="table",
    show_default=True,
    help="html: the dashboard as one self-contained file.",
)
@click.option(
    "--out",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Write to this file instead of standard output (html default: var/report.html).",
)
@click.option("--lang", help="Language of the html report (zh, en or de; default: the site's).")
@pass_context
def report_command(
    ctx: Context,
    by: str,
    since: str | None,
    until: str | None,
    fmt: str,
    out: Path | None,
    lang: str | None,
) -> None:
    """Which stories and channels bring customers into the shop (in-shop sales first)."""
    filters = report.Filters(
        since=_day(since, "--since"), until=_day(until, "--until"), timezone=ctx.settings.timezone
    )
    by_keys = report.parse_by(by)
    engine = _database(ctx)
    if fmt == "html":
        from publisher.dashboard import export

        target = out or ctx.settings.var_dir / "report.html"
        export.write_html(engine, ctx.settings, filters, target, lang=lang)
        click.echo(str(target))
        return
    result = report.build(engine, by_keys, filters=filters)
    if fmt == "table":
        _print_table(result)
        return
    if fmt == "json":
        text = json.dumps(report.as_json(result), ensure_ascii=False, indent=2) + "\n"
    else:
        text = report.as_csv(result)
    if out:
        out.write_text(text, encoding="utf-8")
    else:
        click.echo(text, nl=False)


def _day(value: str | None, option: str) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise StoryloopError(f"{option} {value!r}: expected a date like 2026-03-01") from exc


def terminal_width() -> int:
    """COLUMNS when set, else the terminal's width, else 200 (a pipe or a file)."""
    if os.environ.get("COLUMNS", "").isdigit() or sys.stdout.isatty():
        return shutil.get_terminal_size().columns
    return 200


def _print_table(result: report.Report) -> None:
    from rich.console import Console
    from rich.table import Table

    width = terminal_width()
    drawn = report.layout(result, width)
    table = Table()
    for name, size, numeric in zip(drawn.header, drawn.widths, drawn.numeric, strict=True):
        if numeric:
            table.add_column(name, justify="right", no_wrap=True, min_width=size, max_width=size)
        else:
            table.add_column(name, overflow="fold", min_width=size, max_width=size)
    for index, row in enumerate(drawn.cells):
        table.add_row(*row, end_section=index == len(drawn.cells) - 2)
    Console(width=width, soft_wrap=False).print(table)
    notes = []
    if drawn.left_out:
        notes.append(f"left out for width: {', '.join(drawn.left_out)} (see --format csv)")
    flagged = report.channels_without_conversions(result)
    if flagged:
        notes.append(f"clicks but no conversions: {', '.join(flagged)}")
    for note in notes:
        click.echo(textwrap.fill(note, width=max(width, 20), break_on_hyphens=False))
    brought = report.brought_rows(result)
    if brought:
        friends = Table(title="customers brought by customers")
        for name in ("story", "channel", "customers"):
            friends.add_column(name, justify="right" if name == "customers" else "left")
        for (story, channel), n in brought:
            friends.add_row(story, channel, str(n))
        Console(width=width, soft_wrap=False).print(friends)


@click.command("digest")
@click.option("--to", help='Send to this address instead of STORYLOOP["digest"]["to"].')
@click.option("--days", type=int, help="How many days back (default: digest.days or 7).")
@click.option("--until", help="Last day of the digest (YYYY-MM-DD; default: yesterday).")
@pass_context
def digest_command(ctx: Context, to: str | None, days: int | None, until: str | None) -> None:
    """Email the owner a short summary of the last week, with the charts as images."""
    from publisher.dashboard import digest

    if days is not None and not 1 <= days <= 366:
        raise StoryloopError(f"--days {days}: expected a number of days from 1 to 366")
    last = _day(until, "--until")
    message = digest.send_digest(_database(ctx), ctx.settings, to=to, days=days, until=last)
    click.echo(f"digest sent to {message['To']}")


# --------------------------------------------------------------------------- poster


@click.command("poster")
@click.argument("story")
@click.option("--store", help="Store id from STORYLOOP stores (default: the story's store).")
@click.option("--all-stores", is_flag=True, help="One poster for each store the offer is valid in.")
@click.option("--size", default="a4", show_default=True, metavar="a4|a5|tent", help="Paper size.")
@click.option("--format", "fmt", default="pdf", show_default=True, metavar="pdf|svg")
@click.option(
    "--out", type=click.Path(path_type=Path), help="Folder for the files (default: var/posters)."
)
@pass_context
def poster_command(
    ctx: Context,
    story: str,
    store: str | None,
    all_stores: bool,
    size: str,
    fmt: str,
    out: Path | None,
) -> None:
    """Write a printable poster of STORY's offer with a tracked QR code, one per store."""
    from publisher.tracking import poster  # WeasyPrint, Jinja and Babel: only for this command

    settings = ctx.settings
    poster.parse_size(size)
    poster.parse_format(fmt)
    stories = load_manifest(settings.manifest_path).by_slug()
    if story not in stories:
        known = ", ".join(sorted(stories)) or "none"
        raise NotFound(f'No story "{story}" in the manifest (stories: {known})')
    entry = _manifest_entry(settings.manifest_path, story)
    chosen = poster.choose_stores(
        settings, stories[story], store=store, all_stores=all_stores, entry=entry
    )
    engine = _database(ctx)
    made = poster.make_posters(
        engine,
        settings,
        stories[story],
        out or settings.var_dir / "posters",
        stores=chosen,
        size=size,
        fmt=fmt,
        entry=entry,
    )
    for one in made:
        code = f"  offer code {one.offer_code}" if one.offer_code else ""
        click.echo(f"{one.path}\n  QR -> {one.url}{code}")


def _manifest_entry(path: Path, slug: str) -> dict[str, object] | None:
    """The story's raw manifest entry, for fields newer than this model (see poster.offer_until)."""
    data = json.loads(path.read_text(encoding="utf-8"))
    return next((s for s in data.get("stories", ()) if s.get("slug") == slug), None)


# --------------------------------------------------------------------------- links


@click.command("links")
@click.argument("story")
@pass_context
def links_command(ctx: Context, story: str) -> None:
    """The tracked links and offer codes made for STORY's deliveries (a slug)."""
    from publisher.tracking.links import stored_links

    engine = _database(ctx)
    with engine.connect() as conn:
        found = stored_links(conn, ctx.settings, story)
    if not found:
        raise NotFound(f'No tracked links for story "{story}" yet', hint="they are made on publish")
    for link in found:
        variant = f" {link.variant}" if link.variant else ""
        offer = f"  offer {link.offer_code}" if link.offer_code else ""
        click.echo(f"{link.channel}{variant}  {link.tracked}  -> {link.original}{offer}")


# --------------------------------------------------------------------------- metrics


@click.command("metrics")
@pass_context
def metrics_command(ctx: Context) -> None:
    """Fetch likes, reposts, replies and views of sent posts from the networks (for the report)."""
    from publisher.tracking.metrics import refresh_metrics

    recorded, failed = refresh_metrics(_database(ctx), ctx.settings)
    click.echo(f"metrics recorded for {recorded} delivery(ies), {failed} failed")


COMMANDS = [
    serve,
    ingest,
    redeem,
    import_sales,
    report_command,
    digest_command,
    poster_command,
    links_command,
    metrics_command,
]
