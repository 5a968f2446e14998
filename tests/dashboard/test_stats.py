"""Intervals, verdicts and the chance a variant is best: known values and every rule."""

from __future__ import annotations

import pytest

from publisher.dashboard import stats
from publisher.dashboard.stats import ChannelFigures, Verdict


def test_wilson_interval_matches_the_textbook_values() -> None:
    # Newcombe (1998), table I: 15 of 148 -> 0.0624 to 0.1605; 0 of 10 -> 0 to 0.2775
    low, high = stats.wilson(15, 148).low, stats.wilson(15, 148).high
    assert (round(low, 4), round(high, 4)) == (0.0624, 0.1605)
    empty = stats.wilson(0, 10)
    assert (round(empty.low, 4), round(empty.high, 4)) == (0.0, 0.2775)
    assert stats.wilson(0, 0).rate is None


def _figures(
    name: str, posts: int, readers: int, converted: int, code_only: int = 0
) -> ChannelFigures:
    return ChannelFigures(name, posts, readers, converted, code_only)


@pytest.mark.parametrize(
    ("mine", "expected"),
    [
        (_figures("x", 9, 500, 50), Verdict.TOO_EARLY),
        (_figures("x", 40, 12, 0), Verdict.NO_READERS),
        (_figures("x", 40, 80, 3), Verdict.TOO_EARLY),
        (_figures("x", 40, 900, 0), Verdict.NO_CUSTOMERS),
        (_figures("x", 40, 900, 0, code_only=3), Verdict.WEAKER),
        (_figures("x", 40, 900, 9), Verdict.WEAKER),
        (_figures("x", 40, 900, 90), Verdict.STRONGER),
        (_figures("x", 40, 900, 45), Verdict.LIKE_OTHERS),
    ],
)
def test_each_verdict_rule(mine: ChannelFigures, expected: Verdict) -> None:
    others = [_figures("a", 40, 1000, 50), _figures("b", 40, 1000, 50)]
    assert stats.verdict(mine, others).verdict is expected


def test_probability_of_being_best_is_deterministic_and_sensible() -> None:
    clear = stats.p_best({"A": (10, 400), "B": (40, 400)})
    assert [round(v.p_best, 3) for v in clear.variants] == [0.0, 1.0]
    assert not clear.thin
    even = stats.p_best({"A": (20, 400), "B": (20, 400)})
    assert abs(even.variants[0].p_best - 0.5) < 0.02
    assert even.variants == stats.p_best({"A": (20, 400), "B": (20, 400)}).variants
    thin = stats.p_best({"A": (1, 12), "B": (2, 12), "C": (0, 12)})
    assert thin.thin and abs(sum(v.p_best for v in thin.variants) - 1) < 1e-9


def test_exact_two_variant_probability_agrees_with_the_sampling() -> None:
    """P(B > A) for Beta posteriors has a closed form (Evan Miller's sum); the Monte Carlo
    estimate must be within its sampling error of it."""
    from math import exp, lgamma, log

    def log_beta(a: float, b: float) -> float:
        return lgamma(a) + lgamma(b) - lgamma(a + b)

    a_conv, a_n, b_conv, b_n = 12, 200, 21, 200
    a1, b1, a2, b2 = 1 + a_conv, 1 + a_n - a_conv, 1 + b_conv, 1 + b_n - b_conv
    exact = sum(
        exp(log_beta(a1 + i, b1 + b2) - log(b2 + i) - log_beta(1 + i, b2) - log_beta(a1, b1))
        for i in range(a2)
    )
    sampled = stats.p_best({"A": (a_conv, a_n), "B": (b_conv, b_n)}).variants[1].p_best
    assert abs(sampled - exact) < 0.01


def test_probability_of_being_best_by_quadrature_matches_the_exact_sum_and_sampling() -> None:
    """Three or more variants are integrated numerically: for two variants the quadrature must
    give the closed form, and for four it must agree with a large seeded sample."""
    import numpy as np

    for figures in ({"A": (12, 200), "B": (21, 200)}, {"A": (5000, 90000), "B": (5100, 90000)}):
        exact = [v.p_best for v in stats.p_best(figures).variants]
        shapes = [(1 + c, 1 + r - c) for c, r in figures.values()]
        numeric = stats._p_best_quadrature(shapes)
        assert max(abs(a - b) for a, b in zip(exact, numeric, strict=True)) < 1e-4
    four = {"A": (3, 10), "B": (30, 100), "C": (300, 1000), "D": (2, 9)}
    found = [v.p_best for v in stats.p_best(four).variants]
    draws = 400_000
    rng = np.random.default_rng(7)
    samples = np.stack([rng.beta(1 + c, 1 + r - c, size=draws) for c, r in four.values()])
    sampled = np.bincount(samples.argmax(axis=0), minlength=4) / draws
    assert abs(sum(found) - 1) < 1e-9
    assert max(abs(a - b) for a, b in zip(found, sampled, strict=True)) < 0.005
