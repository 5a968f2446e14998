"""The publish path and each failure class, against a real database and scripted channels."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import pytest
from sqlalchemy import select
from sqlalchemy.engine import Connection, Engine

from channels.base import (
    AuthProblem,
    ChannelContext,
    ContentRejected,
    DeliveryKey,
    Links,
    OutcomeUnknown,
    Post,
    RateLimited,
    Receipt,
    RetryLater,
)
from publisher import ledger, plan
from publisher.dispatch import Dispatcher
from publisher.ledger import Claim, Delivery
from publisher.model import Manifest, Story
from publisher.settings import Secret, Settings
from tests.engine.enginekit import (
    T0,
    Clock,
    Lookup,
    NoIdempotency,
    Scripted,
    dispatcher,
    scripted,
    story,
)


def planned(
    engine: Engine, settings: Settings, stories: Iterable[Story], now: datetime = T0
) -> None:
    manifest = Manifest(version=1, site_url="http://127.0.0.1:8000", stories=tuple(stories))
    with ledger.transaction(engine) as conn:
        plan.plan_and_apply(conn, manifest, settings, now=now)


def row(engine: Engine, slug: str, channel: str = "net", variant: str | None = None) -> Delivery:
    with engine.connect() as conn:
        found = ledger.get(conn, ledger.delivery_id(slug, channel, variant))
    assert found is not None, f"no delivery for {slug} on {channel}"
    return found


class Setup(Protocol):
    """The ``setup`` fixture: settings, the scripted channel and a maker of dispatchers."""

    def __call__(
        self,
        cls: type[Scripted] = ...,
        channel_conf: Mapping[str, Any] | None = None,
        engine_conf: Mapping[str, Any] | None = None,
        stories: list[Story] | None = None,
    ) -> tuple[Settings, Scripted, Callable[[], Dispatcher]]: ...


@pytest.fixture
def setup(ledger_db: Engine, make_site: Callable[..., Settings], clock: Clock) -> Setup:
    """(settings, stories, net, dispatcher-maker): one channel "net" and two stories due at T0."""

    def make(
        cls: type[Scripted] = Scripted,
        channel_conf: Mapping[str, Any] | None = None,
        engine_conf: Mapping[str, Any] | None = None,
        stories: list[Story] | None = None,
    ) -> tuple[Settings, Scripted, Callable[[], Dispatcher]]:
        settings = make_site(channels={"net": channel_conf or {}}, **(engine_conf or {}))
        chosen = stories or [story("s1", T0, channels=["net"]), story("s2", T0, channels=["net"])]
        planned(ledger_db, settings, chosen)
        net = scripted(settings, cls)
        return settings, net, lambda: dispatcher(ledger_db, settings, chosen, clock, {"net": net})

    return make


def test_due_delivery_is_published_once_with_tracked_links_and_receipt_stored(
    ledger_db: Engine, setup: Setup
) -> None:
    _settings, net, make = setup()
    first, second = make(), make()
    assert first.run_due() == {"sent": 2}
    assert second.run_due() == {}
    r = row(ledger_db, "s1")
    assert net.calls == sorted(net.calls) or len(net.calls) == 2
    assert len(net.calls) == 2 and net.created == 2
    assert (r.state, r.remote_id, r.url) == ("sent", f"r-{r.id}", f"https://net.example/{r.id}")
    assert r.sent_at is not None and r.sent_at.tzinfo is not None
    with ledger_db.connect() as conn:
        assert [e.state for e in ledger.events(conn, r.id)] == ["planned", "sent"]


def test_post_text_carries_the_tracked_link_not_the_raw_story_url(
    ledger_db: Engine, setup: Setup, clock: Clock
) -> None:
    _settings, net, make = setup()
    seen: list[str] = []
    original = net.render

    def spy(story: Story, variant: str | None, links: Links) -> Post:
        post = original(story, variant, links)
        seen.append(post.text)
        return post

    net.render = spy  # type: ignore[method-assign]  # a spy on this one channel
    make().run_due()
    assert seen and all("/go/" in text and "stories/s" not in text for text in seen)


def test_nothing_is_claimed_before_its_time(ledger_db: Engine, setup: Setup, clock: Clock) -> None:
    _settings, net, make = setup()
    clock.now = T0 - timedelta(seconds=1)
    assert make().run_due() == {}
    assert net.calls == []


def test_rate_limit_holds_the_channel_until_the_time_the_network_gave(
    ledger_db: Engine, setup: Setup, clock: Clock
) -> None:
    _settings, net, make = setup()
    until = T0 + timedelta(minutes=15)
    net.script = [RateLimited("slow down", until=until)]
    d = make()
    outcomes = d.run_due()
    assert outcomes == {"retry_wait": 1, "held back": 1}  # the channel is held
    limited = [r for r in (row(ledger_db, "s1"), row(ledger_db, "s2")) if r.state == "retry_wait"]
    assert [(r.next_attempt_at, r.attempts) for r in limited] == [(until, 0)]
    clock.now = until - timedelta(seconds=1)
    assert d.run_due() == {}
    clock.now = until
    assert d.run_due() == {"sent": 2}


def test_retry_after_delays_the_next_attempt_to_exactly_that_time(
    ledger_db: Engine, setup: Setup, clock: Clock
) -> None:
    _settings, net, make = setup(stories=[story("s1", T0, channels=["net"])])
    retry_at = T0 + timedelta(seconds=90)
    net.script = [RetryLater("503 Service Unavailable", retry_at=retry_at)]
    make().run_due()
    r = row(ledger_db, "s1")
    assert (r.state, r.next_attempt_at, r.attempts) == ("retry_wait", retry_at, 1)
    assert r.last_error is not None
    assert "503" in r.last_error


def test_transient_failures_back_off_exponentially_with_jitter(
    ledger_db: Engine, setup: Setup, clock: Clock
) -> None:
    _settings, net, make = setup(
        stories=[story("s1", T0, channels=["net"])], engine_conf={"retry_base_seconds": 10}
    )
    d = make()
    waits = []
    for _ in range(4):
        net.script = [RetryLater("timeout before sending")]
        d.run_due()
        r = row(ledger_db, "s1")
        assert r.next_attempt_at is not None
        waits.append((r.next_attempt_at - clock.now).total_seconds())
        clock.now = r.next_attempt_at
    for n, wait in enumerate(waits):
        assert 10 * 2**n * 0.5 <= wait <= 10 * 2**n


def test_attempts_are_capped_then_the_delivery_fails_with_the_reason(
    ledger_db: Engine, setup: Setup, clock: Clock
) -> None:
    _settings, net, make = setup(
        stories=[story("s1", T0, channels=["net"])], engine_conf={"max_attempts": 3}
    )
    d = make()
    for _ in range(5):
        net.script = [RetryLater("502 Bad Gateway")]
        d.run_due()
        clock.advance(hours=2)
    r = row(ledger_db, "s1")
    assert (r.state, r.attempts) == ("failed", 3)
    assert r.last_error is not None
    assert "gave up after 3 attempts" in r.last_error
    assert len(net.calls) == 3


def test_auth_problem_pauses_the_channel_and_says_so_once(
    ledger_db: Engine, setup: Setup, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    _settings, net, make = setup()
    net.script = [AuthProblem("401 The access token is invalid")]
    first, second = make(), make()
    with caplog.at_level(logging.WARNING):
        first.run_due()
        second.run_due()
    warnings = [r for r in caplog.records if "paused" in r.getMessage()]
    assert len(warnings) == 1 and "storyloop resume net" in warnings[0].getMessage()
    assert len(net.calls) == 1  # the second delivery was never tried on a paused channel
    assert {row(ledger_db, s).attempts for s in ("s1", "s2")} == {0}
    with ledger.transaction(ledger_db) as conn:
        assert ledger.resume_channel(conn, "net", now=clock.now)
    assert first.run_due() == {"sent": 2}


def test_rejected_content_fails_at_once_with_the_networks_message(
    ledger_db: Engine, setup: Setup
) -> None:
    _settings, net, make = setup(stories=[story("s1", T0, channels=["net"])])
    net.script = [ContentRejected("422 Validation failed: Text character limit of 500 exceeded")]
    assert make().run_due() == {"failed": 1}
    r = row(ledger_db, "s1")
    assert r.last_error is not None
    assert r.state == "failed" and "character limit of 500 exceeded" in r.last_error
    assert len(net.calls) == 1


def test_unknown_outcome_on_an_idempotency_key_channel_is_resent_under_the_same_key(
    ledger_db: Engine, setup: Setup
) -> None:
    _settings, net, make = setup(stories=[story("s1", T0, channels=["net"])])
    net.script = [OutcomeUnknown("read timed out after sending")]
    net.lost = {0}
    d = make()
    assert d.run_due() == {"unknown": 1}
    assert d.resolve_unknown() == {"retry_wait": 1}
    assert d.run_due() == {"sent": 1}
    assert net.calls == [row(ledger_db, "s1").id] * 2
    assert net.created == 1  # the network de-duplicated the resend by its key


def test_unknown_outcome_is_resolved_by_lookup_without_sending_again(
    ledger_db: Engine, setup: Setup
) -> None:
    _settings, net, make = setup(cls=Lookup, stories=[story("s1", T0, channels=["net"])])
    net.script = [OutcomeUnknown("connection reset after sending")]
    net.lost = {0}
    d = make()
    d.run_due()
    assert d.resolve_unknown() == {"sent": 1}
    r = row(ledger_db, "s1")
    assert (r.state, r.remote_id) == ("sent", f"r-{r.id}")
    assert len(net.calls) == 1


def test_unknown_outcome_without_idempotency_waits_for_a_person(
    ledger_db: Engine, setup: Setup, clock: Clock
) -> None:
    _settings, net, make = setup(cls=NoIdempotency, stories=[story("s1", T0, channels=["net"])])
    net.script = [OutcomeUnknown("read timed out")]
    d = make()
    d.run_due()
    assert d.resolve_unknown() == {"held": 1}
    clock.advance(hours=1)
    assert d.resolve_unknown() == {} and d.run_due() == {}
    r = row(ledger_db, "s1")
    assert r.last_error is not None
    assert r.state == "unknown" and f"storyloop resolve {r.id}" in r.last_error
    with ledger.transaction(ledger_db) as conn:
        assert ledger.resolve_resend(conn, r.id, now=clock.now)
    assert d.run_due() == {"sent": 1}
    assert len(net.calls) == 2


def test_person_confirms_an_unknown_post_was_sent(
    ledger_db: Engine, setup: Setup, clock: Clock
) -> None:
    _settings, net, make = setup(cls=NoIdempotency, stories=[story("s1", T0, channels=["net"])])
    net.script = [OutcomeUnknown("read timed out")]
    d = make()
    d.run_due()
    d.resolve_unknown()
    id_ = row(ledger_db, "s1").id
    with ledger.transaction(ledger_db) as conn:
        assert ledger.resolve_sent(conn, id_, url="https://t.me/cedarandclay/42", now=clock.now)
        assert not ledger.resolve_sent(conn, id_, url="https://t.me/x/1", now=clock.now)
    r = row(ledger_db, "s1")
    assert (r.state, r.url) == ("sent", "https://t.me/cedarandclay/42")


def test_channel_setting_allows_resending_an_unknown_outcome(
    ledger_db: Engine, setup: Setup
) -> None:
    _settings, net, make = setup(
        cls=NoIdempotency,
        channel_conf={"resend_on_unknown": True},
        stories=[story("s1", T0, channels=["net"])],
    )
    net.script = [OutcomeUnknown("read timed out")]
    d = make()
    d.run_due()
    assert d.resolve_unknown() == {"retry_wait": 1}
    assert d.run_due() == {"sent": 1}


def test_worker_dying_after_the_request_left_makes_the_delivery_unknown(
    ledger_db: Engine, setup: Setup, clock: Clock
) -> None:
    _settings, _net, make = setup(stories=[story("s1", T0, channels=["net"])])
    lease = timedelta(seconds=120)
    with ledger.transaction(ledger_db) as conn:
        [claim] = ledger.claim_due(conn, token="dead/1", now=clock.now, lease=lease)
        assert ledger.mark_sending(conn, claim, now=clock.now, lease=lease)
    clock.advance(seconds=121)
    d = make()
    released, unknown, _missed = d.housekeeping()
    assert (released, unknown) == ([], [claim.id])
    assert d.resolve_unknown() == {"retry_wait": 1}
    assert d.run_due() == {"sent": 1}


def test_worker_dying_before_the_request_gives_the_delivery_back(
    ledger_db: Engine, setup: Setup, clock: Clock
) -> None:
    _settings, _net, make = setup(stories=[story("s1", T0, channels=["net"])])
    with ledger.transaction(ledger_db) as conn:
        [claim] = ledger.claim_due(conn, token="dead/1", now=clock.now, lease=timedelta(seconds=5))
    d = make()
    assert d.run_due() == {}  # still leased to the dead worker
    clock.advance(seconds=6)
    released, unknown, _missed = d.housekeeping()
    assert (released, unknown) == ([claim.id], [])
    assert d.run_due() == {"sent": 1}


def test_receipt_is_kept_even_if_the_lease_ran_out_during_the_request(
    ledger_db: Engine, setup: Setup, clock: Clock
) -> None:
    _settings, net, make = setup(stories=[story("s1", T0, channels=["net"])])
    d = make()
    original = net.publish

    def slow(post: Post, key: DeliveryKey) -> Receipt:
        clock.advance(seconds=500)
        make().housekeeping()  # another worker sees the lease expired
        return original(post, key)

    net.publish = slow  # type: ignore[method-assign]  # a spy on this one channel
    assert d.run_due() == {"sent": 1}
    assert row(ledger_db, "s1").state == "sent"


def test_catch_up_after_downtime_sends_what_is_within_grace_and_reports_the_rest(
    ledger_db: Engine, setup: Setup, clock: Clock
) -> None:
    stories = [story(f"s{h}", T0 + timedelta(hours=h), channels=["net"]) for h in (0, 4, 7, 9)]
    _settings, _net, make = setup(stories=stories)
    clock.now = T0 + timedelta(hours=10)  # the engine was down for ten hours
    d = make()
    _released, _unknown, missed = d.housekeeping()
    assert d.run_due() == {"sent": 3}
    assert missed == [row(ledger_db, "s0").id]
    assert {s.slug: row(ledger_db, s.slug).state for s in stories} == {
        "s0": "missed",
        "s4": "sent",
        "s7": "sent",
        "s9": "sent",
    }


def test_token_bucket_spaces_posts_so_the_network_rarely_limits_us(
    ledger_db: Engine, setup: Setup, clock: Clock
) -> None:
    _settings, _net, make = setup(channel_conf={"rate": {"per_minute": 2}})
    d = make()
    assert d.run_due() == {"sent": 1, "throttled": 1}
    waiting = [r for r in (row(ledger_db, "s1"), row(ledger_db, "s2")) if r.state != "sent"]
    assert [(r.state, r.next_attempt_at, r.attempts) for r in waiting] == [
        ("planned", T0 + timedelta(seconds=30), 0)
    ]
    clock.advance(seconds=30)
    assert d.run_due() == {"sent": 1}


def test_closed_posting_window_at_publish_time_defers_to_the_opening(
    ledger_db: Engine, setup: Setup, clock: Clock
) -> None:
    _settings, net, make = setup(
        channel_conf={"window": "08:00-22:00"}, stories=[story("s1", T0, channels=["net"])]
    )
    clock.now = T0.replace(hour=23)  # down since before 22:00: not posted in the night
    assert make().run_due() == {"deferred": 1}
    r = row(ledger_db, "s1")
    assert (r.state, r.next_attempt_at) == ("planned", (T0 + timedelta(days=1)).replace(hour=8))
    assert net.calls == []


def test_story_gone_from_the_manifest_is_cancelled_not_sent(
    ledger_db: Engine, make_site: Callable[..., Settings], clock: Clock
) -> None:
    settings = make_site(channels={"net": {}})
    planned(ledger_db, settings, [story("s1", T0, channels=["net"])])
    net = scripted(settings)
    assert dispatcher(ledger_db, settings, [], clock, {"net": net}).run_due() == {"cancelled": 1}
    assert net.calls == []


def test_stopping_worker_gives_back_claims_it_has_not_started(
    ledger_db: Engine, setup: Setup
) -> None:
    _settings, net, make = setup()
    d = make()
    original = net.publish

    def publish_then_stop(post: Post, key: DeliveryKey) -> Receipt:
        d.stop.set()
        return original(post, key)

    net.publish = publish_then_stop  # type: ignore[method-assign]  # a spy on this one channel
    assert d.run_due() == {"sent": 1, "released": 1}
    with ledger_db.connect() as conn:
        states = sorted(conn.execute(select(ledger.d.state)).scalars())
    assert states == ["planned", "sent"]


def test_a_live_worker_keeps_its_lease_however_slow_the_network(
    ledger_db: Engine, make_site: Callable[..., Settings]
) -> None:
    settings = make_site(channels={"net": {}}, lease_seconds=0.6)
    now = datetime.now(UTC)
    stories = [story("s1", now - timedelta(seconds=1), channels=["net"])]
    planned(ledger_db, settings, stories, now=now)
    net = scripted(settings)
    by_slug = {s.slug: s for s in stories}
    d = Dispatcher(ledger_db, settings, lambda: by_slug, channels={"net": net}.__getitem__)
    other = Dispatcher(ledger_db, settings, lambda: by_slug, channels={"net": net}.__getitem__)
    original = net.publish
    recovered = []

    def slow(post: Post, key: DeliveryKey) -> Receipt:
        for _ in range(6):
            time.sleep(0.25)
            recovered.extend(other.housekeeping()[1])
        return original(post, key)

    net.publish = slow  # type: ignore[method-assign]  # a spy on this one channel
    assert d.run_due() == {"sent": 1}
    assert recovered == []


def test_unexpected_error_quoting_a_secret_is_stored_and_logged_without_it(
    ledger_db: Engine,
    make_site: Callable[..., Settings],
    clock: Clock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    settings = make_site(channels={"net": {}})
    stories = [story("s1", T0, channels=["net"])]
    planned(ledger_db, settings, stories)
    context = ChannelContext(var_dir=settings.var_dir, content_dir=settings.content_path)
    net = NoIdempotency({"name": "net", "bot_token": Secret("123:SECRET-abc", "T")}, context)
    net.script = [RuntimeError("POST https://api.telegram.org/bot123:SECRET-abc/sendMessage")]
    with caplog.at_level(logging.DEBUG):
        assert dispatcher(ledger_db, settings, stories, clock, {"net": net}).run_due() == {
            "unknown": 1
        }
    r = row(ledger_db, "s1")
    assert r.last_error is not None
    assert "SECRET" not in r.last_error and "api.telegram.org/bot***" in r.last_error
    assert "SECRET" not in caplog.text


@pytest.mark.parametrize(
    ("cls", "other_state"), [(Scripted, "sending"), (NoIdempotency, "claimed")]
)
def test_only_crash_safe_channels_put_a_whole_batch_in_flight(
    ledger_db: Engine, setup: Setup, cls: type[Scripted], other_state: str
) -> None:
    _settings, net, make = setup(cls=cls)
    seen: list[set[str]] = []
    original = net.publish

    def spy(post: Post, key: DeliveryKey) -> Receipt:
        with ledger_db.connect() as conn:
            states = conn.execute(select(ledger.d.id, ledger.d.state)).all()
        seen.append({s for i, s in states if i != key.id})
        return original(post, key)

    net.publish = spy  # type: ignore[method-assign]  # a spy on this one channel
    assert make().run_due() == {"sent": 2}
    assert seen[0] == {other_state}


def test_receipts_of_posts_that_went_out_are_stored_even_when_the_pass_fails(
    ledger_db: Engine, setup: Setup, monkeypatch: pytest.MonkeyPatch
) -> None:
    _settings, _net, make = setup(
        stories=[story("s1", T0, channels=["net"]), story("s2", T0, channels=["net"])]
    )
    real, calls = ledger.mark_sent_many, list[int]()

    def flaky(
        conn: Connection, sent: Sequence[tuple[Claim, Mapping[str, Any]]], now: datetime
    ) -> set[str]:
        calls.append(len(sent))
        if len(calls) == 1:
            raise RuntimeError("database went away")
        return real(conn, sent, now)

    monkeypatch.setattr(ledger, "mark_sent_many", flaky)
    with pytest.raises(RuntimeError, match="went away"):
        make().run_due()
    assert {row(ledger_db, s).state for s in ("s1", "s2")} == {"sent"}
