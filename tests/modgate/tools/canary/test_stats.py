"""The intervals against published values, and the percentile against numpy's definition."""

from __future__ import annotations

import numpy as np
import pytest

from modgate.tools.canary.stats import difference, percentile, wilson, z_for


def test_z_is_the_two_sided_normal_quantile() -> None:
    assert z_for(0.95) == pytest.approx(1.959964, abs=1e-6)
    assert z_for(0.99) == pytest.approx(2.575829, abs=1e-6)


@pytest.mark.parametrize(
    ("k", "n", "low", "high"),
    [
        # Newcombe (1998a), Statistics in Medicine 17:857, table I, method 3 (Wilson score).
        (81, 263, 0.2553, 0.3662),
        (15, 148, 0.0624, 0.1605),
        (0, 20, 0.0, 0.1611),
        (1, 29, 0.0061, 0.1718),
    ],
)
def test_wilson_matches_newcombe_table(k: int, n: int, low: float, high: float) -> None:
    interval = wilson(k, n, 0.95)
    assert interval.low == pytest.approx(low, abs=1e-4)
    assert interval.high == pytest.approx(high, abs=1e-4)


def test_wilson_without_trials_knows_nothing() -> None:
    interval = wilson(0, 0, 0.95)
    assert (interval.low, interval.high) == (0.0, 1.0)


@pytest.mark.parametrize(
    ("k1", "n1", "k2", "n2", "low", "high"),
    [
        # Newcombe (1998b), Statistics in Medicine 17:873, table II, method 10, examples (a), (b),
        # (d), (e), (f): the interval of 56/70 - 48/80 etc.; difference() takes (first, second)
        # and gives second - first.
        (48, 80, 56, 70, 0.0524, 0.3339),
        (3, 10, 9, 10, 0.1705, 0.8090),
        (0, 29, 5, 56, -0.0381, 0.1926),
        (0, 20, 0, 10, -0.1611, 0.2775),
        (0, 20, 10, 10, 0.6791, 1.0),
    ],
)
def test_difference_matches_newcombe_method_10(
    k1: int, n1: int, k2: int, n2: int, low: float, high: float
) -> None:
    interval = difference(k1, n1, k2, n2, 0.95)
    assert interval.low == pytest.approx(low, abs=1e-4)
    assert interval.high == pytest.approx(high, abs=1e-4)
    assert interval.excludes(0.0) == (low > 0)


def test_difference_of_equal_rates_contains_zero() -> None:
    interval = difference(20, 200, 20, 200, 0.99)
    assert interval.low < 0 < interval.high and not interval.excludes(0.0)


def test_percentile_is_the_nearest_rank() -> None:
    rng = np.random.default_rng(3)
    for size in (1, 2, 7, 100, 1001):
        values = list(rng.exponential(100.0, size))
        for q in (50, 95, 99):
            assert percentile(values, q) == np.percentile(values, q, method="inverted_cdf")
    assert percentile([], 95) is None
