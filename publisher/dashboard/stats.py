"""Uncertainty for small counts: Wilson intervals, channel verdicts, and which variant is best.

The rules are documented in docs/TRACKING.md ("Verdicts" and "Variants"); change both together.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

Z95 = 1.959963984540054  # two-sided 95 %

MIN_POSTS = 10  # a channel gets a verdict after this many sent posts ...
MIN_READERS = 100  # ... and this many unique readers (or fewer readers than posts: see below)
THIN_READERS = 30  # a variant with fewer readers than this makes its probabilities "thin"
THIN_CONVERSIONS = 5  # so does a story whose variants converted fewer readers than this


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


def p_best(results: Mapping[str, tuple[int, int]]) -> VariantTest:
    """For each variant ``{name: (converted readers, readers)}``, the probability that its
    conversion rate is the highest, each rate's posterior being Beta(1 + converted, 1 + readers
    - converted) (a uniform prior). Computed, not sampled: exactly for two variants
    (:func:`_p_greater`), by quadrature for more (:func:`_p_best_quadrature`), so the same
    figures always give the same answer and a page draws no random numbers."""
    items = sorted(results.items())
    names = [n for n, _ in items]
    shapes = [(1 + max(c, 0), 1 + max(r - c, 0)) for _, (c, r) in items]
    if len(shapes) == 1:
        chances = [1.0]
    elif len(shapes) == 2:
        second = _p_greater(shapes[1], shapes[0])
        chances = [1.0 - second, second]
    else:
        chances = _p_best_quadrature(shapes)
    variants = [
        VariantChance(n, results[n][1], results[n][0], wilson(*results[n]), p)
        for n, p in zip(names, chances, strict=True)
    ]
    thin = any(r < THIN_READERS for _, r in results.values()) or (
        sum(c for c, _ in results.values()) < THIN_CONVERSIONS
    )
    return VariantTest(variants, thin)


def _log_beta(a: float, b: float) -> float:
    return math.lgamma(a) + math.lgamma(b) - math.lgamma(a + b)


def _p_greater(x: tuple[int, int], y: tuple[int, int]) -> float:
    """P(X > Y) for X ~ Beta(*x), Y ~ Beta(*y) with whole-number shapes: the closed form
    sum_{i < a_x} B(a_y + i, b_y + b_x) / ((b_x + i) B(1 + i, b_x) B(a_y, b_y)) (Evan Miller,
    "Formulas for Bayesian A/B Testing"), summed over the smaller first shape (P(X > Y) =
    1 - P(Y > X), equality having probability 0). Its terms are taken in logarithms, each
    from the one before: term i + 1 = term i (a_y + i)(b_x + i) / ((a_y + b_y + b_x + i)(1 + i)),
    the first being B(a_y, b_y + b_x) / B(a_y, b_y)."""
    import numpy as np

    (ax, bx), (ay, by) = x, y
    if ax > ay:
        return 1.0 - _p_greater(y, x)
    i = np.arange(ax - 1, dtype=float)
    steps = np.log(ay + i) + np.log(bx + i) - np.log(ay + by + bx + i) - np.log1p(i)
    first = _log_beta(ay, by + bx) - _log_beta(ay, by)
    logs = first + np.concatenate(([0.0], np.cumsum(steps)))
    return min(1.0, max(0.0, math.fsum(np.exp(logs).tolist())))


QUADRATURE_POINTS = 4001  # per variant, over its posterior's bulk (tests/dashboard/test_stats.py)


def _p_best_quadrature(shapes: Sequence[tuple[int, int]]) -> list[float]:
    """P(variant i has the highest rate) = the integral over [0, 1] of its posterior density
    times the other posteriors' distribution functions, by the trapezoid rule on a grid that
    puts :data:`QUADRATURE_POINTS` points over each posterior's bulk (its mean +/- 12 standard
    deviations), each distribution function integrated from its density on the same grid;
    the probabilities are then scaled to add up to 1."""
    import numpy as np

    pieces = [np.array([0.0, 1.0])]
    for a, b in shapes:
        mean = a / (a + b)
        sd = math.sqrt(a * b / ((a + b) ** 2 * (a + b + 1)))
        low, high = max(0.0, mean - 12 * sd), min(1.0, mean + 12 * sd)
        pieces.append(np.linspace(low, high, QUADRATURE_POINTS))
    x = np.unique(np.concatenate(pieces))
    inner = x[1:-1]
    steps = np.diff(x)
    densities, cdfs = [], []
    for a, b in shapes:
        density = np.zeros_like(x)
        density[1:-1] = np.exp(
            (a - 1) * np.log(inner) + (b - 1) * np.log1p(-inner) - _log_beta(a, b)
        )
        if a == 1:  # the density's value at the ends (0 elsewhere)
            density[0] = b
        if b == 1:
            density[-1] = a
        cdf = np.concatenate(([0.0], np.cumsum((density[1:] + density[:-1]) / 2 * steps)))
        cdf /= cdf[-1]
        densities.append(density)
        cdfs.append(cdf)
    chances = []
    for i, density in enumerate(densities):
        integrand = density.copy()
        for j, cdf in enumerate(cdfs):
            if j != i:
                integrand *= cdf
        chances.append(float(np.sum((integrand[1:] + integrand[:-1]) / 2 * steps)))
    total = sum(chances)
    return [c / total for c in chances]
