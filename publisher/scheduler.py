"""``storyloop run``: wakes at each due time, sweeps periodically, re-plans when content changes.

APScheduler only decides *when* to look (its job stores cannot be shared between processes, its
own FAQ says so); the ledger decides *what* to do. Its jobs are derived from the ledger after
every pass: one date job per upcoming due time, plus the periodic sweep. Every job just wakes
the one worker loop, so passes never overlap inside a process, and any number of processes can
run against one database because every claim is an atomic conditional UPDATE.
"""

from __future__ import annotations

import logging
import signal
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType

from apscheduler.schedulers.background import BackgroundScheduler
from sqlalchemy.engine import Engine

from publisher import db, ledger, plan, processes
from publisher.consent.removals import Remover
from publisher.dispatch import Dispatcher, Outcome, utcnow
from publisher.errors import ManifestError
from publisher.manifest import load_manifest
from publisher.model import Manifest, Story
from publisher.settings import Settings
from publisher.tracking.metrics import refresh_metrics

log = logging.getLogger(__name__)


class ManifestWatch:
    """The last good manifest, re-read when the file changes (a half-written file is skipped)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._signature: tuple[int, int] | None = None
        self._manifest: Manifest | None = None
        self._stories: Mapping[str, Story] = {}

    def _current_signature(self) -> tuple[int, int] | None:
        try:
            st = self.path.stat()
        except FileNotFoundError:
            return None
        return (st.st_mtime_ns, st.st_size)

    def refresh(self) -> bool:
        """True when a new manifest was loaded."""
        signature = self._current_signature()
        if signature is None or signature == self._signature:
            return False
        try:
            manifest = load_manifest(self.path)
        except ManifestError as exc:
            if self._manifest is None:
                raise
            log.warning("keeping the previous manifest: %s", exc)
            return False
        self._manifest, self._signature = manifest, signature
        self._stories = manifest.by_slug()
        return True

    @property
    def manifest(self) -> Manifest:
        if self._manifest is None:
            self.refresh()
        if self._manifest is None:
            raise ManifestError(f"{self.path}: no manifest", hint="run `storyloop build` first")
        return self._manifest

    def stories(self) -> Mapping[str, Story]:
        if self._manifest is None:
            self.refresh()
        if self._manifest is None:
            return self.manifest.by_slug()  # raises: no manifest yet
        return self._stories


def open_database(settings: Settings) -> Engine:
    """The ledger's database, migrated to the newest schema."""
    engine = db.connect(settings.database_url)
    db.upgrade(engine)
    return engine


def apply_plan(
    engine: Engine, manifest: Manifest, settings: Settings, now: datetime
) -> plan.PlanDiff:
    result = plan.plan_and_apply_in_steps(engine, manifest, settings, now=now)
    for w in result.missed:
        log.warning("%s on %s: more than the grace period late; marked missed", w.story, w.channel)
    if result.changes:
        log.info(
            "plan applied: %d added, %d rescheduled, %d cancelled, %d missed",
            len(result.add),
            len(result.reschedule),
            len(result.cancel),
            len(result.missed),
        )
    return result


class Runner:
    """One engine process: the worker loop, its APScheduler, and optionally the site server."""

    def __init__(
        self,
        settings: Settings,
        engine: Engine,
        *,
        clock: Callable[[], datetime] = utcnow,
        stop: threading.Event | None = None,
    ) -> None:
        self.settings = settings
        self.engine = engine
        self.clock = clock
        self.stop = stop or threading.Event()
        self.kick = threading.Event()
        self.sweep_wanted = threading.Event()
        self.watch = ManifestWatch(settings.manifest_path)
        self.dispatcher = Dispatcher(
            engine, settings, self.watch.stories, clock=clock, stop=self.stop
        )
        self.sweep_seconds = settings.engine.sweep_seconds
        self.remover = Remover(engine, settings, self.dispatcher.worker)
        self.scheduler = BackgroundScheduler(timezone=UTC)
        self._woken: set[datetime] = set()

    def request_stop(self, signum: int = 0, _frame: FrameType | None = None) -> None:
        if signum:
            log.info("signal %d: finishing what is in hand, then stopping", signum)
        self.stop.set()
        self.kick.set()

    def run(self) -> None:
        self.watch.refresh()
        apply_plan(self.engine, self.watch.manifest, self.settings, self.clock())
        self.scheduler.add_job(self._want_sweep, "interval", seconds=self.sweep_seconds, id="sweep")
        self._schedule_metrics()
        self._schedule_digest()
        self.scheduler.start()
        log.info(
            "engine running as %s (sweep every %ss)", self.dispatcher.worker, self.sweep_seconds
        )
        self.sweep_wanted.set()
        try:
            while not self.stop.is_set():
                self._pass_logging_errors()
                self.kick.wait(timeout=self.sweep_seconds)
                self.kick.clear()
        finally:
            self.scheduler.shutdown(wait=False)
            log.info("engine stopped")

    def _schedule_metrics(self) -> None:
        """Engagement figures are read back from the networks now and then, off the publish
        loop (a slow network must not delay a post); ``metrics_minutes: 0`` turns it off."""
        minutes = self.settings.engine.metrics_minutes
        if minutes > 0:
            self.scheduler.add_job(
                self.refresh_metrics, "interval", minutes=minutes, id="metrics", coalesce=True
            )

    def _schedule_digest(self) -> None:
        """The owner's weekly digest (:mod:`publisher.dashboard.digest`), when
        ``STORYLOOP["digest"]`` names an address."""
        wanted = self.settings.engine.digest
        if wanted is None or not wanted.to:
            return
        from publisher.dashboard import digest

        self.scheduler.add_job(
            digest.weekly_job,
            "cron",
            args=(self.engine, self.settings, self.clock),
            id="digest",
            timezone=self.settings.timezone,
            coalesce=True,
            misfire_grace_time=6 * 3600,
            **digest.WEEKLY,
        )

    def refresh_metrics(self) -> tuple[int, int] | None:
        try:
            recorded, failed = refresh_metrics(self.engine, self.settings)
        except Exception as exc:
            log.warning("reading metrics back failed: %s", type(exc).__name__)
            return None
        log.info("metrics: %d posts updated, %d without figures", recorded, failed)
        return recorded, failed

    def _want_sweep(self) -> None:
        self.sweep_wanted.set()
        self.kick.set()

    def _pass_logging_errors(self) -> None:
        """A due-time wake-up only publishes; the periodic sweep also re-plans and recovers.
        A database restart or a broken adapter must not end the engine: log, retry next time."""
        try:
            if self.sweep_wanted.is_set():
                self.sweep_wanted.clear()
                self.sweep()
            else:
                self.publish_due()
        except Exception:
            log.exception("sweep failed; trying again in %ss", self.sweep_seconds)

    def sweep(self) -> None:
        """One pass: re-plan if the manifest changed, recover, resolve, publish what is due
        (the same pass as ``storyloop publish``, :meth:`Dispatcher.one_pass`)."""
        outcomes = self.dispatcher.one_pass(replan=self._replan, budget=self.sweep_seconds)
        self._after_pass(outcomes)

    def _replan(self) -> None:
        if self.watch.refresh():
            apply_plan(self.engine, self.watch.manifest, self.settings, self.clock())
        # Consent first: a withdrawn testimonial's due posts are cancelled before this pass
        # publishes, and its sent copies are taken back.
        if not self.stop.is_set():
            self.remover.sweep_logging_errors(self.watch.stories, self.clock())

    def publish_due(self) -> None:
        """One pass, no longer than a sweep period: a slow channel or a long backlog must not
        keep the sweep (re-plan, recovery, unknowns) from its turn."""
        self._after_pass(self.dispatcher.run_due(budget=self.sweep_seconds))

    def _after_pass(self, outcomes: Counter[Outcome]) -> None:
        """Say what the pass did and wake at the next due times; when it ended with work still
        due, the loop goes round again at once."""
        if outcomes:
            log.info("pass: %s", ", ".join(f"{n} {k}" for k, n in sorted(outcomes.items())))
        self._schedule_wakeups()
        if outcomes and not self.stop.is_set():
            with self.engine.connect() as conn:
                if ledger.any_due(conn, now=self.clock()):
                    self.kick.set()

    def _schedule_wakeups(self) -> None:
        now = self.clock()
        with self.engine.connect() as conn:
            upcoming = ledger.next_wakeups(conn, after=now, limit=100)
        self._woken = {t for t in self._woken if t > now}
        for when in upcoming:
            if when in self._woken:
                continue
            self._woken.add(when)
            self.scheduler.add_job(
                self.kick.set,
                "date",
                run_date=when,
                id=f"wake-{when.isoformat()}",
                replace_existing=True,
                misfire_grace_time=None,
            )


def server_address(
    settings: Settings, host: str | None = None, port: int | None = None
) -> tuple[str, int]:
    """Where the site and tracked links are served: the options, else ``STORYLOOP tracking``."""
    tracking = settings.engine.tracking
    return host or tracking.host, port or tracking.port


def start_server(settings: Settings, address: tuple[str, int]) -> subprocess.Popen[bytes]:
    """The tracker and site server (``storyloop serve``) as a child process that dies with
    this one, however this one ends (see :mod:`publisher.processes`)."""
    host, port = address
    argv = [sys.executable, "-c", "from publisher.cli import main; main()"]
    argv += ["--config", str(settings.source), "serve", "--host", host, "--port", str(port)]
    log.info("serving the site and tracked links on http://%s:%s/", host, port)
    return subprocess.Popen(argv, cwd=settings.root, env=processes.child_env())


def stop_server(child: subprocess.Popen[bytes]) -> None:
    if child.poll() is not None:
        return
    child.terminate()
    try:
        child.wait(timeout=10)
    except subprocess.TimeoutExpired:
        child.kill()
        child.wait()


def run(settings: Settings, *, serve: bool, address: tuple[str, int] | None = None) -> None:
    """Migrate, plan, and publish until SIGTERM or SIGINT; the server stops with us."""
    address = address or server_address(settings)
    if serve:
        processes.ensure_port_free(*address)
    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        log.info("signal %d: finishing what is in hand, then stopping", signum)
        stop.set()

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, on_signal)
    engine = open_database(settings)
    runner = Runner(settings, engine, stop=stop)
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, runner.request_stop)
    child = start_server(settings, address) if serve and not stop.is_set() else None
    try:
        if not stop.is_set():
            runner.run()
    finally:
        if child is not None:
            stop_server(child)
        engine.dispose()
