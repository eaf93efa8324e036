from __future__ import annotations

import math

import numpy as np
import pytest

from ci_perf.analysis import rates, stats
from ci_perf.analysis.rates import Counts


def _windows(failures: list[int], requests: int = 10) -> list[Counts]:
    return [Counts(f, requests) for f in failures]


def test_dispersion_is_one_for_binomial_windows_and_more_for_bursts() -> None:
    assert rates.dispersion(_windows([1, 1, 1, 1], 100)) == 1.0
    assert rates.dispersion(_windows([0, 0, 0, 40], 100)) > 10
    assert rates.dispersion(_windows([0, 0, 0, 0], 100)) == 1.0  # no failures: nothing to measure


@pytest.mark.parametrize(
    ("current", "base"),
    [
        pytest.param(Counts(3, 300), Counts(10, 3_000), id="few"),
        pytest.param(Counts(0, 300), Counts(0, 3_000), id="none"),
        pytest.param(Counts(30, 300), Counts(5, 3_000), id="many"),
        pytest.param(Counts(300, 300), Counts(5, 3_000), id="all"),
    ],
)
@pytest.mark.parametrize("delta", [-0.001, 0.0, 0.01, 0.3])
def test_restricted_rates_are_the_likelihoods_maximum_at_that_difference(
    current: Counts, base: Counts, delta: float
) -> None:
    def log_likelihood(r1: float, r2: float) -> float:
        total = 0.0
        for (x, n), r in ((current, r1), (base, r2)):
            total += (x * math.log(r) if x else 0.0) + ((n - x) * math.log1p(-r) if n - x else 0.0)
        return total

    r1, r2 = rates.restricted_rates(current, base, delta)
    assert r1 - r2 == pytest.approx(delta, abs=1e-12)
    grid = np.linspace(max(0.0, -delta) + 1e-9, min(1.0, 1.0 - delta) - 1e-9, 20_001)
    best = max(log_likelihood(r + delta, r) for r in grid)
    assert log_likelihood(max(r1, 1e-300), max(r2, 1e-300)) >= best - 1e-6


def test_no_failures_anywhere_still_has_an_interval_of_positive_width() -> None:
    estimate = rates.rate_test(_windows([0] * 10, 300), _windows([0] * 30), alpha=0.01, power=0.8)
    assert estimate is not None
    assert estimate.effect == 0.0
    assert estimate.low < 0.0 < estimate.high
    assert estimate.p_up == estimate.p_down == 1.0
    assert estimate.mde > 0


def test_the_interval_excludes_zero_exactly_when_the_one_sided_p_is_below_two_and_a_half_percent() -> None:
    rng = np.random.default_rng(4)
    for _ in range(200):
        base = _windows(list(rng.binomial(300, rng.uniform(0.001, 0.02), 10)), 300)
        current = _windows(list(rng.binomial(10, rng.uniform(0.001, 0.06), 30)))
        estimate = rates.rate_test(base, current, alpha=0.01, power=0.8)
        assert estimate is not None
        assert (estimate.low > 0) == (estimate.p_up < 0.025)
        assert (estimate.high < 0) == (estimate.p_down < 0.025)
        assert estimate.low <= estimate.effect <= estimate.high


def test_a_burst_in_the_current_run_is_weighed_by_its_own_windows() -> None:
    steady = _windows([3] * 10, 300)
    burst = rates.rate_test(steady, _windows([0] * 29 + [6]), alpha=0.01, power=0.8)
    spread = rates.rate_test(steady, _windows([1] * 6 + [0] * 24), alpha=0.01, power=0.8)
    assert burst is not None
    assert spread is not None
    assert burst.effect == spread.effect  # six failures in 300 requests either way
    assert burst.p_up > spread.p_up
    assert burst.high - burst.low > spread.high - spread.low


def test_the_baselines_spread_counts_with_t_on_the_pooled_degrees_of_freedom() -> None:
    calm = rates.rate_test(_windows([3] * 10, 300), _windows([1] * 10 + [0] * 20), alpha=0.01, power=0.8)
    bursty = rates.rate_test(
        _windows([0, 0, 12, 0, 0, 15, 0, 0, 3, 0], 300), _windows([1] * 10 + [0] * 20), alpha=0.01, power=0.8
    )
    assert calm is not None
    assert bursty is not None
    assert bursty.df == calm.df == 9 + 29
    assert bursty.high - bursty.low > calm.high - calm.low


def test_the_smallest_change_is_five_failures_of_this_runs_requests_or_the_setting() -> None:
    quiet = rates.rate_test(_windows([0] * 20, 300), _windows([0] * 30), alpha=0.01, power=0.8)
    busy = rates.rate_test(_windows([0] * 20, 300), _windows([0] * 30, 1_000), alpha=0.01, power=0.8)
    assert quiet is not None
    assert busy is not None
    assert rates.smallest_change(quiet, 0.1) == pytest.approx(100 * 5 / 300)
    assert rates.smallest_change(busy, 0.1) == 0.1  # 5 of 30,000 requests is less than 0.1 points
    # no failures anywhere: the interval lies within the smallest change on a quiet endpoint (unchanged)
    assert -rates.smallest_change(quiet, 0.1) < quiet.low < quiet.high < rates.smallest_change(quiet, 0.1)
    two = rates.rate_test(_windows([0] * 20, 300), _windows([0] * 28 + [1, 1]), alpha=0.01, power=0.8)
    assert two is not None
    assert two.low < rates.smallest_change(two, 0.1)  # two failures are never a regression
    latency = stats.Estimate(0.1, 0.05, 0.15, 0.01, 0.99, 0.05, 0.02, 9)
    assert rates.smallest_change(latency, 0.1) == 0.1


def test_history_mode_reads_the_runs_totals_when_given() -> None:
    estimate = rates.rate_test(
        _windows([3] * 10, 300), _windows([0] * 30), totals=Counts(30, 300), alpha=0.01, power=0.8
    )
    assert estimate is not None
    assert estimate.effect == pytest.approx(9.0)
    assert estimate.requests == 300


def test_no_requests_is_no_test() -> None:
    assert rates.rate_test([], _windows([0] * 30), alpha=0.01, power=0.8) is None
    assert rates.rate_test(_windows([3] * 10, 300), [], alpha=0.01, power=0.8) is None
