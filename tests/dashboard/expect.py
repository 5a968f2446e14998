"""What the seeded history implies, computed with plain Python from the seed's events (never
with the code under test)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from zoneinfo import ZoneInfo

from tests.dashboard.seed import ZONE, Delivery, History


@dataclass
class Figures:
    posts: int = 0
    bots: int = 0
    clicks: int = 0
    readers: set[str] = field(default_factory=set)  # unique readers
    converted: set[str] = field(default_factory=set)
    post_readers: dict[str, set[str]] = field(default_factory=dict)  # per delivery
    post_converted: dict[str, set[str]] = field(default_factory=dict)
    sales: int = 0
    codes: int = 0
    linked: int = 0
    code_only: int = 0
    revenue: dict[str, int] = field(default_factory=dict)
    shop_revenue: dict[str, int] = field(default_factory=dict)

    @property
    def in_shop(self) -> int:
        return self.linked + self.code_only

    @property
    def conversions(self) -> int:
        return self.sales + self.in_shop

    @property
    def rate(self) -> float | None:
        return len(self.converted) / len(self.readers) if self.readers else None

    @property
    def readers_of_posts(self) -> int:
        """The readers of each post, added up (how a row of several posts counts them)."""
        return sum(len(r) for r in self.post_readers.values())

    @property
    def converted_of_posts(self) -> int:
        return sum(len(r) for r in self.post_converted.values())


def local_day(moment: datetime) -> date:
    return moment.astimezone(ZoneInfo(ZONE)).date()


def figures(
    h: History,
    *,
    since: date,
    until: date,
    keep: Callable[[Delivery], bool] = lambda d: True,
    store: str | None = None,
) -> Figures:
    out = Figures()
    wanted = {d.id for d in h.deliveries if keep(d)}

    def inside(moment: datetime) -> bool:
        return since <= local_day(moment) <= until

    if store is None:
        for d in h.deliveries:
            if d.id in wanted and d.state == "sent" and inside(d.at):
                out.posts += 1
        for c in h.clicks:
            if c.delivery in wanted and inside(c.at):
                if c.bot:
                    out.bots += 1
                else:
                    out.clicks += 1
                    out.readers.add(c.reader)
                    out.post_readers.setdefault(c.delivery, set()).add(c.reader)
        for claim in h.claims:
            if h.clicks[claim.click].delivery in wanted and inside(claim.at):
                out.codes += 1
    for s in h.sales:
        if s.delivery not in wanted or not inside(s.at):
            continue
        if store is not None and s.store != store:
            continue
        if s.kind == "sale":
            out.sales += 1
        elif s.click is None:
            out.code_only += 1
        else:
            out.linked += 1
        out.revenue[s.currency] = out.revenue.get(s.currency, 0) + s.value_minor
        if s.kind == "redemption":
            out.shop_revenue[s.currency] = out.shop_revenue.get(s.currency, 0) + s.value_minor
        if store is None and s.click is not None and inside(h.clicks[s.click].at):
            out.converted.add(h.clicks[s.click].reader)
            out.post_converted.setdefault(s.delivery, set()).add(h.clicks[s.click].reader)
    return out


def _having(attribute: str, value: object) -> Callable[[Delivery], bool]:
    return lambda d: getattr(d, attribute) == value


def by(h: History, attribute: str, *, since: date, until: date) -> dict[str, Figures]:
    values = {getattr(d, attribute) for d in h.deliveries if getattr(d, attribute)}
    return {v: figures(h, since=since, until=until, keep=_having(attribute, v)) for v in values}


def story_ranking(h: History, *, since: date, until: date) -> list[str]:
    """Stories in the order the dashboard must rank them: in-shop sales, then conversions,
    then readers, then clicks, then name."""
    ranked = by(h, "story", since=since, until=until)
    found = {k: f for k, f in ranked.items() if f.posts or f.conversions}
    return sorted(
        found,
        key=lambda k: (
            -found[k].in_shop,
            -found[k].conversions,
            -len(found[k].readers),
            -found[k].clicks,
            k,
        ),
    )


def grouped_number(n: int) -> str:
    """An integer as English (UK) writes it: 1,234."""
    return f"{n:,}"
