"""Uncertainty for small counts: Wilson intervals, channel verdicts, and which variant is best.

The rules are documented in docs/TRACKING.md ("Verdicts" and "Variants"); change both together.
"""

from __future__ import annotations

import enum
import functools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

Z95 = 1.959963984540054  # two-sided 95 %

MIN_POSTS = 10  # a channel gets a verdict after this many sent posts ...
MIN_READERS = 100  # ... and this many unique readers (or fewer readers than posts: see below)
THIN_READERS = 30  # a variant with fewer readers than this makes its probabilities "thin"
THIN_CONVERSIONS = 5  # so does a story whose variants converted fewer readers than this
DRAWS = 20_000
SEED = 20260301  # fixed: the same figures always give the same probabilities


@dataclass(frozen=True)
class Interval:
    rate: float | None
    low: float
    high: float


def wilson(successes: int, trials: int, z: float = Z95) -> Interval:
    """Wilson score interval of ``successes / trials``; [0, 1] when there are no trials."""
    if trials <= 0:
        return Interval(None, 0.0, 1.0)
    k = min(max(successes, 0), trials)
    p = k / trials
    z2 = z * z
    centre = (p + z2 / (2 * trials)) / (1 + z2 / trials)
    half = z * math.sqrt(p * (1 - p) / trials + z2 / (4 * trials * trials)) / (1 + z2 / trials)
    return Interval(p, max(0.0, centre - half), min(1.0, centre + half))


class Verdict(enum.Enum):
    TOO_EARLY = "too_early"
    NO_READERS = "no_readers"  # posts go out, almost nobody follows them
    NO_CUSTOMERS = "no_customers"  # readers come, nobody buys
    WEAKER = "weaker"  # converts clearly fewer readers than the other channels together
    STRONGER = "stronger"  # converts clearly more
    LIKE_OTHERS = "like_others"


@dataclass(frozen=True)
class ChannelFigures:
    channel: str
    posts: int
    readers: int
    converted: int  # readers who converted through a click
    code_only: int  # in-shop redemptions with a code and no click


@dataclass(frozen=True)
class ChannelVerdict:
    figures: ChannelFigures
    interval: Interval
    others: Interval
    verdict: Verdict


def verdict(mine: ChannelFigures, others: Sequence[ChannelFigures]) -> ChannelVerdict:
    """The rule, in order: too early (fewer than MIN_POSTS posts) -> no readers (fewer readers
    than posts) -> too early (fewer than MIN_READERS readers) -> no customers (not one
    conversion, click or code) -> weaker / stronger (the 95 % Wilson intervals of this channel
    and of all the other channels together do not overlap) -> like the others."""
    interval = wilson(mine.converted, mine.readers)
    pooled = wilson(sum(o.converted for o in others), sum(o.readers for o in others))
    if mine.posts < MIN_POSTS:
        found = Verdict.TOO_EARLY
    elif mine.readers < mine.posts:
        found = Verdict.NO_READERS
    elif mine.readers < MIN_READERS:
        found = Verdict.TOO_EARLY
    elif mine.converted == 0 and mine.code_only == 0:
        found = Verdict.NO_CUSTOMERS
    elif pooled.rate is not None and interval.high < pooled.low:
        found = Verdict.WEAKER
    elif pooled.rate is not None and interval.low > pooled.high:
        found = Verdict.STRONGER
    else:
        found = Verdict.LIKE_OTHERS
    return ChannelVerdict(mine, interval, pooled, found)


def verdicts(channels: Sequence[ChannelFigures]) -> list[ChannelVerdict]:
    return [verdict(c, [o for o in channels if o is not c]) for c in channels]


@dataclass(frozen=True)
class VariantChance:
    variant: str
    readers: int
    converted: int
    interval: Interval
    p_best: float


@dataclass(frozen=True)
class VariantTest:
    variants: list[VariantChance]
    thin: bool


def p_best(results: Mapping[str, tuple[int, int]], draws: int = DRAWS) -> VariantTest:
    """For each variant ``{name: (converted readers, readers)}``, the probability that its
    conversion rate is the highest: each rate's posterior is Beta(1 + converted, 1 + readers -
    converted) (a uniform prior), sampled ``draws`` times with a fixed seed (numpy). The seed
    is fixed, so the same figures give the same answer: kept for the next page that asks."""
    found = _p_best(tuple(sorted(results.items())), draws)
    return VariantTest(list(found.variants), found.thin)


def clear_caches() -> None:
    """Forget the variant tests already drawn (a benchmark measuring a cold answer)."""
    _p_best.cache_clear()


@functools.lru_cache(maxsize=1024)
def _p_best(items: tuple[tuple[str, tuple[int, int]], ...], draws: int) -> VariantTest:
    import numpy as np

    results = dict(items)
    names = sorted(results)
    rng = np.random.default_rng(SEED)
    samples = np.stack(
        [rng.beta(1 + c, 1 + max(r - c, 0), size=draws) for c, r in (results[n] for n in names)]
    )
    wins = np.bincount(samples.argmax(axis=0), minlength=len(names)) / draws
    chances = [
        VariantChance(n, results[n][1], results[n][0], wilson(*results[n]), float(w))
        for n, w in zip(names, wins, strict=True)
    ]
    thin = any(r < THIN_READERS for _, r in results.values()) or (
        sum(c for c, _ in results.values()) < THIN_CONVERSIONS
    )
    return VariantTest(chances, thin)
