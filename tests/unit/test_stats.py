"""The statistical tests on data with known answers."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ci_perf.analysis import stats


def test_history_test_matches_the_t_prediction_interval_by_hand() -> None:
    history = [100.0, 102.0, 98.0, 101.0, 99.0]
    estimate = stats.history_test(history, 110.0, alpha=0.01, power=0.8)
    assert estimate is not None
    logs = np.log(history)
    se = np.std(logs, ddof=1) * math.sqrt(1 + 1 / 5)
    assert estimate.effect == pytest.approx(math.log(110) - logs.mean())
    assert estimate.se == pytest.approx(se)
    assert estimate.df == 4
    assert estimate.low < estimate.effect < estimate.high


@pytest.mark.parametrize("history", [[100.0], [100.0, 101.0], [0.0, 0.0, 100.0]])
def test_history_test_needs_three_runs(history: list[float]) -> None:
    assert stats.history_test(history, 100.0, alpha=0.01, power=0.8) is None


def test_history_interval_covers_the_truth_about_95_percent_of_the_time() -> None:
    rng = np.random.default_rng(3)
    covered = 0
    trials = 2_000
    for _ in range(trials):
        runs = np.exp(rng.normal(0, 0.03, 11))
        estimate = stats.history_test(list(runs[:10] * 50), float(runs[10] * 50 * 1.1), alpha=0.01, power=0.8)
        assert estimate is not None
        covered += estimate.low <= math.log(1.1) <= estimate.high
    assert 0.93 <= covered / trials <= 0.97


def test_benjamini_hochberg_matches_the_textbook_example() -> None:
    adjusted = stats.benjamini_hochberg([0.01, 0.04, 0.03, 0.005])
    assert adjusted == pytest.approx([0.02, 0.04, 0.04, 0.02])


def test_mde_shrinks_with_the_standard_error() -> None:
    assert stats.mde_of(0.01, 9, alpha=0.01, power=0.8) < stats.mde_of(0.02, 9, alpha=0.01, power=0.8)
    assert stats.mde_of(0.01, math.inf, alpha=0.05, power=0.8) == pytest.approx(0.01 * (1.64485 + 0.84162), rel=1e-4)


def test_the_variance_prior_pools_alike_endpoints_and_not_unlike_ones() -> None:
    rng = np.random.default_rng(4)
    alike = [float(np.var(rng.normal(0, 0.03, 5), ddof=1)) for _ in range(10)]
    pooled = stats.variance_prior(alike, df=4)
    assert pooled is not None
    assert pooled.df == stats.POOLED_DF - 4  # alike: topped up to the df of a 20-run history
    assert math.sqrt(pooled.variance) == pytest.approx(0.03, rel=0.3)
    unlike = [float(np.var(rng.normal(0, sd, 5), ddof=1)) for sd in (0.005, 0.01, 0.02, 0.04, 0.08, 0.16)]
    spread = stats.variance_prior(unlike, df=4)
    assert spread is not None
    assert spread.df < 5
    assert stats.variance_prior([0.01, 0.02], df=4) is None
    assert stats.variance_prior(alike, df=19) is None  # a long history keeps its own t tails


def test_an_endpoint_noisier_than_the_rest_is_not_pooled() -> None:
    variances = [0.03**2] * 9 + [0.12**2]
    prior = stats.variance_prior(variances, df=4)
    assert prior is not None
    assert stats.variance_outliers(variances, df=4, prior=prior) == [False] * 9 + [True]


def test_a_pooled_prior_narrows_a_short_historys_interval() -> None:
    history = [math.log(v) for v in (100.0, 104.0, 97.0)]
    alone = stats.history_test(history, math.log(103.0), alpha=0.01, power=0.8, logs=True)
    pooled = stats.history_test(
        history, math.log(103.0), alpha=0.01, power=0.8, logs=True, prior=stats.VariancePrior(0.03**2, 40.0)
    )
    assert alone is not None
    assert pooled is not None
    assert pooled.df == 42
    assert pooled.high - pooled.low < (alone.high - alone.low) / 2


def test_the_rules_mde_counts_the_minimum_effect_and_the_report_wide_adjustment() -> None:
    bound = math.log1p(0.05)
    lone = stats.mde_of(0.01, 19, alpha=0.01, power=0.8)
    rule = stats.rule_mde(0.01, 19, q=0.01, family=1, power=0.8, bound=bound)
    # the estimate must clear the bound (not the interval: that was bound + (t.975 + t.8) · se): bound + t.8 · se
    assert rule == pytest.approx(bound + 0.8610 * 0.01, rel=1e-3)
    assert rule > lone
    wide = stats.rule_mde(0.01, 19, q=0.01, family=1000, power=0.8, bound=bound)
    assert wide == pytest.approx((5.6268 + 0.8610) * 0.01, rel=1e-3)  # BH over 1000 tests: t.99999 · se
    assert stats.rule_mde(0.001, 19, q=0.01, family=1, power=0.8, bound=bound, floor=0.2) > 0.2  # min_abs_ms
