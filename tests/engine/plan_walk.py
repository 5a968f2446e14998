"""The plan's daily caps as they were placed before issue 17: each capped post walks forward one
day at a time from its own date. Kept as the reference the faster placement must agree with
(tests/engine/test_plan_scale.py) and as the baseline of benchmarks/plan.py."""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from publisher import plan
from publisher.model import Manifest, Story
from publisher.settings import Settings
from tests.engine.enginekit import story


def desired_day_by_day(manifest: Manifest, settings: Settings) -> list[plan.Desired]:
    stories = manifest.by_slug()
    found = sorted(
        (c for s in manifest.stories for c in plan._candidates(s, settings)),
        key=lambda c: (c.due_at, c.story, c.channel, c.variant or ""),
    )
    per_day: dict[tuple[str, date], int] = defaultdict(int)
    out: list[plan.Desired] = []
    for c in found:
        conf = settings.channels[c.channel]
        window = plan._window(conf, c.channel)
        cap = int(conf["daily_cap"]) if conf.get("daily_cap") else None
        zone = ZoneInfo(c.timezone)
        due = plan.in_window(c.due_at, window, zone)
        while cap is not None and per_day[(c.channel, due.astimezone(zone).date())] >= cap:
            due = plan.in_window(plan._next_day(due, window, zone), window, zone)
        if not plan.consent_ok(stories[c.story], due.astimezone(zone).date()):
            continue
        per_day[(c.channel, due.astimezone(zone).date())] += 1
        out.append(plan._replace_due(c, due))
    return out


# The sample site's eight channels (pelicanconf.py) with their windows and caps, each written to
# the outbox so nothing leaves the machine.
CHANNELS: dict[str, dict[str, object]] = {
    "mastodon": {"type": "outbox", "window": "08:00-22:00", "daily_cap": 4},
    "bluesky": {"type": "outbox", "window": "08:00-22:00"},
    "telegram": {"type": "outbox"},
    "x": {"type": "outbox", "window": "08:00-22:00"},
    "wechat": {"type": "outbox", "daily_cap": 1},
    "weibo": {"type": "outbox"},
    "email": {"type": "outbox"},
    "webhook": {"type": "outbox"},
}
ZONES = ("Asia/Shanghai", "Europe/Berlin", "UTC", "America/New_York")


def corpus(n: int, start: datetime, *, every: timedelta = timedelta(hours=2)) -> list[Story]:
    """``n`` stories on all eight channels, one every two hours across four time zones (so the
    capped channels build a queue that grows with ``n``); every third has two headline
    variants, every tenth is a testimonial whose consent runs out part-way through."""
    out = []
    for i in range(n):
        variants = {"a": f"Headline A {i}", "b": f"Headline B {i}"} if i % 3 == 0 else None
        consent_until = (start + every * n * 4).date() if i % 10 == 0 else None
        out.append(
            story(
                f"s{i:05d}",
                start + every * i,
                channels=CHANNELS,
                timezone=ZONES[i % len(ZONES)],
                variants=variants,
                consent=True if i % 10 == 0 else None,
                consent_until=consent_until,
            )
        )
    return out
