"""A rate limit or a pause must not stall a channel, nor the engine's sweep.

The engine runs in this process (``Runner``, real clock, real database) against two networks on
loopback: one answers its first request with HTTP 429 and ``Retry-After: 1`` (or 401, and the
channel is resumed a moment later by hand); the other is slow, so a pass outlives the hold.
Every post must go out, each delivery held back at most once, and the sweep must keep running.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from publisher import ledger
from publisher.scheduler import Runner, open_database
from publisher.settings import Settings
from tests.engine.enginekit import story, write_manifest
from tests.engine.fake_network import FakeNetwork, Faults

LIMITED, SLOW = 20, 16
CHANNEL = "tests.engine.fake_channel:KeyedChannel"


def run_until_sent(runner: Runner, total: int, timeout: float) -> tuple[int, int]:
    """Run the engine in a thread until every delivery is sent: (sent, sweeps)."""
    sweeps = [0]
    sweep = runner.sweep

    def counted() -> None:
        sweeps[0] += 1
        sweep()

    runner.sweep = counted  # type: ignore[method-assign]
    thread = threading.Thread(target=runner.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    sent = 0
    try:
        while time.monotonic() < deadline:
            with runner.engine.connect() as conn:
                sent = ledger.counts_by_state(conn).get(ledger.SENT, 0)
            if sent == total:
                break
            time.sleep(0.2)
    finally:
        runner.request_stop()
        thread.join(timeout=30)
    assert not thread.is_alive(), "the engine did not stop"
    return sent, sweeps[0]


def held_back(runner: Runner) -> int:
    e = ledger.delivery_events.c
    with runner.engine.connect() as conn:
        query = select(func.count()).where(e.state == "released", e.detail == "channel on hold")
        return int(conn.execute(query).scalar_one())


def site(make_site: Callable[..., Settings], limited: FakeNetwork, slow: FakeNetwork) -> Settings:
    settings = make_site(
        channels={
            "limited": {"type": CHANNEL, "url": limited.url},
            "slow": {"type": CHANNEL, "url": slow.url},
        },
        sweep_seconds=1,
        claim_batch=10,
        publish_threads=2,
        lease_seconds=30,
        metrics_minutes=0,
    )
    now = datetime.now(UTC) - timedelta(seconds=1)
    stories = [story(f"l{i:02d}", now, channels=["limited"]) for i in range(LIMITED)]
    stories += [story(f"s{i:02d}", now, channels=["slow"]) for i in range(SLOW)]
    write_manifest(settings.root, stories)
    return settings


@pytest.mark.timeout(90)
def test_one_429_and_a_slow_channel_every_post_goes_out_and_the_sweep_runs(
    make_site: Callable[..., Settings],
) -> None:
    with (
        FakeNetwork(Faults(rate_limit_first=1, retry_after=1)) as limited,
        FakeNetwork(Faults(delay=(0.5, 0.5))) as slow,
    ):
        settings = site(make_site, limited, slow)
        runner = Runner(settings, open_database(settings))
        sent, sweeps = run_until_sent(runner, LIMITED + SLOW, timeout=40)
        stats = limited.stats()
    holds = held_back(runner)
    runner.engine.dispose()
    assert stats["rate_limited"] == 1
    assert sent == LIMITED + SLOW, f"{sent} sent; {holds} held-back events"
    assert holds <= LIMITED, f"{holds} held-back events for {LIMITED} deliveries"
    assert sweeps >= 2, "the periodic sweep never ran again"
    assert set(stats["created"].values()) == {1}


@pytest.mark.timeout(90)
def test_a_paused_channel_resumed_during_a_long_pass_goes_out_without_a_stall(
    make_site: Callable[..., Settings],
) -> None:
    with (
        FakeNetwork(Faults(auth_fail_first=1)) as limited,
        FakeNetwork(Faults(delay=(0.5, 0.5))) as slow,
    ):
        settings = site(make_site, limited, slow)
        runner = Runner(settings, open_database(settings))

        def resume_when_paused() -> None:
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                with runner.engine.connect() as conn:
                    if ledger.paused_channels(conn, now=datetime.now(UTC)):
                        break
                time.sleep(0.1)
            time.sleep(0.5)
            with ledger.transaction(runner.engine) as conn:  # `storyloop resume limited`
                ledger.resume_channel(conn, "limited", now=datetime.now(UTC))

        resumer = threading.Thread(target=resume_when_paused, daemon=True)
        resumer.start()
        sent, sweeps = run_until_sent(runner, LIMITED + SLOW, timeout=40)
        resumer.join()
        stats = limited.stats()
    holds = held_back(runner)
    runner.engine.dispose()
    assert stats["auth_failed"] == 1
    assert sent == LIMITED + SLOW, f"{sent} sent; {holds} held-back events"
    assert holds <= LIMITED, f"{holds} held-back events for {LIMITED} deliveries"
    assert sweeps >= 2, "the periodic sweep never ran again"
