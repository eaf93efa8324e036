"""The statistical tests on data with known answers."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ci_perf import sketches
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


def _windows(
    rng: np.random.Generator, *, windows: int, per_window: int, shift: float, phi: float
) -> list[sketches.Sketch]:
    level = 0.0
    out = []
    for _ in range(windows):
        level = phi * level + rng.normal(0, 0.02)
        out.append(sketches.of_values(list(rng.lognormal(math.log(20) + shift + level, 0.4, per_window))))
    return out


def _windows_estimate(base: list[sketches.Sketch], current: list[sketches.Sketch], q: float) -> stats.Estimate | None:
    b, c, offset = stats.window_matrices(base, current)
    pair = stats.WindowPair(b, c, stats.key_values(offset, b.bins.shape[1]), q)
    return stats.windows_test(pair, stats.Resampling(0.01, 0.8, 400, np.random.default_rng(0)))


def test_windows_test_finds_a_large_shift_and_brackets_it() -> None:
    rng = np.random.default_rng(5)
    base = _windows(rng, windows=40, per_window=300, shift=0.0, phi=0.3)
    current = _windows(rng, windows=40, per_window=300, shift=math.log(1.25), phi=0.3)
    estimate = _windows_estimate(base, current, 0.95)
    assert estimate is not None
    assert estimate.p_up < 1e-6
    assert estimate.p_down > 0.99
    assert estimate.low < math.log(1.25) < estimate.high
    assert estimate.low > math.log(1.1)


def test_windows_test_sees_no_change_between_identical_conditions() -> None:
    rng = np.random.default_rng(6)
    estimate = _windows_estimate(
        _windows(rng, windows=40, per_window=300, shift=0.0, phi=0.3),
        _windows(rng, windows=40, per_window=300, shift=0.0, phi=0.3),
        0.5,
    )
    assert estimate is not None
    assert min(estimate.p_up, estimate.p_down) > 0.001
    assert estimate.low < 0 < estimate.high


def test_windows_test_refuses_too_few_requests_for_the_quantile() -> None:
    rng = np.random.default_rng(7)
    base = _windows(rng, windows=10, per_window=20, shift=0.0, phi=0.0)
    assert _windows_estimate(base, base, 0.99) is None  # p99 needs ~1,000 requests per batch


def test_autocorrelation_is_estimated_and_clipped() -> None:
    rng = np.random.default_rng(8)
    noise = rng.normal(size=5_000)
    series = np.empty_like(noise)
    series[0] = noise[0]
    for i in range(1, len(series)):
        series[i] = 0.6 * series[i - 1] + noise[i]
    assert stats.lag1_autocorrelation(series) == pytest.approx(0.6, abs=0.05)
    assert stats.lag1_autocorrelation(-series[::2] * np.resize([1, -1], len(series[::2]))) <= 0.9
    assert stats.lag1_autocorrelation(np.resize([1.0, -1.0], 100)) == 0.0


def test_benjamini_hochberg_matches_the_textbook_example() -> None:
    adjusted = stats.benjamini_hochberg([0.01, 0.04, 0.03, 0.005])
    assert adjusted == pytest.approx([0.02, 0.04, 0.04, 0.02])


def test_mde_shrinks_with_the_standard_error() -> None:
    assert stats.mde_of(0.01, 9, alpha=0.01, power=0.8) < stats.mde_of(0.02, 9, alpha=0.01, power=0.8)
    assert stats.mde_of(0.01, math.inf, alpha=0.05, power=0.8) == pytest.approx(0.01 * (1.64485 + 0.84162), rel=1e-4)


def test_an_assumed_run_noise_widens_the_single_baseline_interval() -> None:
    rng = np.random.default_rng(9)
    base = _windows(rng, windows=40, per_window=300, shift=0.0, phi=0.3)
    current = _windows(rng, windows=40, per_window=300, shift=0.0, phi=0.3)
    b, c, offset = stats.window_matrices(base, current)
    values = stats.key_values(offset, b.bins.shape[1])
    narrow, wide = (
        stats.windows_test(
            stats.WindowPair(b, c, values, 0.5),
            stats.Resampling(0.01, 0.8, 400, np.random.default_rng(0)),
            run_variance=v,
        )
        for v in (0.0, 0.03**2 * 2)
    )
    assert narrow is not None
    assert wide is not None
    assert wide.high - wide.low > 2 * (narrow.high - narrow.low)
    assert wide.mde > narrow.mde


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
    lone = stats.mde_of(0.02, 19, alpha=0.01, power=0.8)
    rule = stats.rule_mde(0.02, 19, q=0.01, family=1, power=0.8, bound=bound)
    # the interval must clear the bound: bound + (t.975 + t.8) · se
    assert rule == pytest.approx(bound + (2.0930 + 0.8610) * 0.02, rel=1e-3)
    assert rule > lone
    wide = stats.rule_mde(0.02, 19, q=0.01, family=1000, power=0.8, bound=bound)
    assert wide > rule  # BH over many tests asks for a larger t than the interval does
    assert stats.rule_mde(0.001, 19, q=0.01, family=1, power=0.8, bound=bound, floor=0.2) > 0.2  # min_abs_ms
