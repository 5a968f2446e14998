"""Before any resend the engine makes sure the post is not out already.

The networks are real HTTP servers on loopback (``fake_network.py``) that do not deduplicate
unless told to, and count every post they make per delivery, so a double post shows.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.engine import Engine

from channels.base import Channel, ChannelContext
from channels.mastodon import Mastodon
from publisher.model import Story
from publisher.settings import Settings
from tests.engine.enginekit import Clock, dispatcher, story
from tests.engine.fake_channel import KeyedChannel, LookupChannel
from tests.engine.fake_network import FakeNetwork, Faults
from tests.engine.test_dispatch import planned, row

OneDue = tuple[Settings, list[Story], Clock]


def adapter(cls: type[Channel], settings: Settings, net: FakeNetwork, **conf: object) -> Channel:
    context = ChannelContext(var_dir=settings.var_dir, content_dir=settings.content_path)
    return cls({"name": "net", "url": net.url, "timeout": (2, 0.5), **conf}, context)


@pytest.fixture
def one_due(
    ledger_db: Engine, make_site: Callable[..., Settings]
) -> tuple[Settings, list[Story], Clock]:
    """(settings, stories, clock): one delivery on "net", due a second ago by the real clock."""
    settings = make_site(channels={"net": {}})
    clock = Clock(datetime.now(UTC))
    stories = [story("s1", clock.now - timedelta(seconds=1), channels=["net"])]
    planned(ledger_db, settings, stories, now=clock.now)
    return settings, stories, clock


def test_a_5xx_after_the_post_was_made_is_looked_up_not_posted_again(
    ledger_db: Engine, one_due: OneDue
) -> None:
    settings, stories, clock = one_due
    with FakeNetwork(Faults(lookup=True, fail_after_create_first=1)) as net:
        d = dispatcher(
            ledger_db, settings, stories, clock, {"net": adapter(LookupChannel, settings, net)}
        )
        assert d.run_due() == {"retry_wait": 1}
        clock.advance(minutes=10)
        assert d.run_due() == {"sent": 1}
        stats = net.stats()
    assert stats["failed_after_create"] == 1
    assert list(stats["created"].values()) == [1], stats
    assert row(ledger_db, "s1").remote_id == stats["posts"][0]["id"]


def test_a_key_older_than_the_network_keeps_it_is_not_relied_on(
    ledger_db: Engine, one_due: OneDue
) -> None:
    """The network keeps keys half a second here (Mastodon: an hour) and the channel says so;
    a resend after that, with no lookup possible, is held for a person instead."""
    settings, stories, clock = one_due
    with FakeNetwork(Faults(keep_keys=0.5, fail_after_create_first=1)) as net:
        net_adapter = adapter(KeyedChannel, settings, net, idempotency_key_hours=0.5 / 3600)
        d = dispatcher(ledger_db, settings, stories, clock, {"net": net_adapter})
        assert d.run_due() == {"retry_wait": 1}
        time.sleep(0.6)
        clock.advance(minutes=10)
        assert d.run_due() == {"held": 1}
        stats = net.stats()
    assert list(stats["created"].values()) == [1], stats
    r = row(ledger_db, "s1")
    assert (r.state, r.next_attempt_at) == ("unknown", None)
    assert r.last_error is not None
    assert "no longer keeps the idempotency key" in r.last_error
    assert "storyloop resolve" in r.last_error


def test_a_fresh_key_is_resent_and_the_network_answers_with_the_same_post(
    ledger_db: Engine, one_due: OneDue
) -> None:
    settings, stories, clock = one_due
    with FakeNetwork(Faults(keep_keys=3600, fail_after_create_first=1)) as net:
        net_adapter = adapter(KeyedChannel, settings, net, idempotency_key_hours=1)
        d = dispatcher(ledger_db, settings, stories, clock, {"net": net_adapter})
        assert d.run_due() == {"retry_wait": 1}
        clock.advance(minutes=10)
        assert d.run_due() == {"sent": 1}
        stats = net.stats()
    assert list(stats["requests"].values()) == [2]
    assert list(stats["created"].values()) == [1]


def test_an_unanswered_post_whose_key_expired_is_held_not_resent(
    ledger_db: Engine, one_due: OneDue
) -> None:
    """A timeout after the network made the post: once the key is forgotten, only a person
    can tell (the channel has no lookup)."""
    settings, stories, clock = one_due
    with FakeNetwork(Faults(keep_keys=0.5, delay=(1.0, 1.0))) as net:
        net_adapter = adapter(KeyedChannel, settings, net, idempotency_key_hours=0.5 / 3600)
        d = dispatcher(ledger_db, settings, stories, clock, {"net": net_adapter})
        assert d.run_due() == {"unknown": 1}
        time.sleep(1.2)
        clock.advance(seconds=1)
        assert d.resolve_unknown() == {"held": 1}
        assert d.run_due() == {}
        stats = net.stats()
    assert list(stats["created"].values()) == [1], stats


def test_mastodon_keeps_its_idempotency_key_one_hour() -> None:
    context = ChannelContext(var_dir=None, content_dir=None)  # type: ignore[arg-type]
    assert Mastodon({"name": "m"}, context).key_lifetime == timedelta(hours=1)
    assert Mastodon({"name": "m", "idempotency_key_hours": 2}, context).key_lifetime == timedelta(
        hours=2
    )
