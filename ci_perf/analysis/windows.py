"""The window tests: one run against one or two earlier runs (single mode) and duet's paired arms.

Pure math on the collector's per-window sketches; docs/STATISTICS.md ("Single baseline", "Duet").

* ``windows_test``: one run against one or two runs — batch means of log window statistics (Welch,
  variance inflated for lag-1 autocorrelation) and a stationary block bootstrap of the whole-run ratio.
* ``paired_test``: duet mode — both deployments measured in the same windows: a one-sample t-test on
  the per-batch log ratios (variance inflated for lag-1 autocorrelation) and a stationary block
  bootstrap that resamples the same windows in both arms.

Both return a ``stats.Estimate`` in log-ratio space; too few batches give ``None``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
from numpy.typing import NDArray

from ci_perf import sketches
from ci_perf.analysis.stats import (
    CONFIDENCE,
    QUANTISATION_SD,
    WINSORISED_MEAN,
    Estimate,
    mde_of,
    one_sided,
    t_quantile,
)
from ci_perf.sketches import Sketch

MIN_BATCHES = 4
MAX_RHO = 0.9
# duet batches: a quantile q from ~2 / (1 − q) requests per arm (p95: 40), see paired_test
PAIRED_TAIL = 2.0


# -- single-baseline mode ----------------------------------------------------------------------


@dataclass(frozen=True)
class WindowMatrix:
    """One arm's windows over a common key range: counts per key, plus zeros, sums and totals."""

    bins: NDArray[np.float64]  # windows × keys (column 0 holds zeros)
    sums: NDArray[np.float64]
    counts: NDArray[np.float64]


class WindowPair(NamedTuple):
    """Both arms' windows on one key grid, and the statistic a test compares (a quantile or "mean")."""

    base: WindowMatrix
    current: WindowMatrix
    values: NDArray[np.float64]  # the value of each key column (``key_values``)
    statistic: float | str


class Resampling(NamedTuple):
    """How a window test decides: its level, the power of its MDE, and the bootstrap."""

    alpha: float
    power: float
    replicates: int
    rng: np.random.Generator


def window_matrices(base: Sequence[Sketch], current: Sequence[Sketch]) -> tuple[WindowMatrix, WindowMatrix, int]:
    """Both arms on one key grid; returns (base, current, offset of column 1)."""
    keyed = [s for s in (*base, *current) if s.bins]
    offset = min((s.offset for s in keyed), default=0)
    end = max((s.offset + len(s.bins) for s in keyed), default=0)

    def matrix(sketches: Sequence[Sketch]) -> WindowMatrix:
        bins = np.zeros((len(sketches), end - offset + 1))
        for row, s in enumerate(sketches):
            bins[row, 0] = s.zeros
            if s.bins:
                start = s.offset - offset + 1
                bins[row, start : start + len(s.bins)] = s.bins
        sums = np.array([s.sum for s in sketches], dtype=float)
        counts = np.array([s.count for s in sketches], dtype=float)
        return WindowMatrix(bins, sums, counts)

    return matrix(base), matrix(current), offset


def key_values(offset: int, width: int) -> NDArray[np.float64]:
    """The value each column stands for: 0 for the zeros column, DDSketch's key value otherwise."""
    return sketches.bucket_values(offset, width)


def quantile_rows(bins: NDArray[np.float64], q: float, values: NDArray[np.float64]) -> NDArray[np.float64]:
    """Quantile ``q`` of each row of counts, interpolated within a bucket (``sketches.quantile_rows``)."""
    return sketches.quantile_rows(bins, q, values)


def statistic_rows(
    matrix_bins: NDArray[np.float64], sums: NDArray[np.float64], statistic: float | str, values: NDArray[np.float64]
) -> NDArray[np.float64]:
    """A row-wise statistic: a quantile in (0, 1), ``"mean"`` or ``WINSORISED_MEAN``."""
    if statistic == WINSORISED_MEAN:
        return sketches.winsorised_mean_rows(matrix_bins, values)
    if statistic == "mean":
        counts = matrix_bins.sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(counts > 0, sums / counts, np.nan)
    return quantile_rows(matrix_bins, float(statistic), values)


def lag1_autocorrelation(series: NDArray[np.float64]) -> float:
    """Lag-1 autocorrelation, clipped to [0, 0.9]: negative values are treated as none."""
    if len(series) < 3:
        return 0.0
    centred = series - series.mean()
    denominator = float(np.dot(centred, centred))
    if denominator <= 0:
        return 0.0
    rho = float(np.dot(centred[:-1], centred[1:]) / denominator)
    return min(max(rho, 0.0), MAX_RHO)


def _batches(matrix: WindowMatrix, size: int) -> WindowMatrix:
    count = len(matrix.counts) // size
    if count == 0:
        return WindowMatrix(np.zeros((0, matrix.bins.shape[1])), np.zeros(0), np.zeros(0))
    cut = count * size
    return WindowMatrix(
        matrix.bins[:cut].reshape(count, size, -1).sum(axis=1),
        matrix.sums[:cut].reshape(count, size).sum(axis=1),
        matrix.counts[:cut].reshape(count, size).sum(axis=1),
    )


def batch_size(counts: NDArray[np.float64], statistic: float | str, *, tail: float = 10.0) -> int:
    """Windows per batch so that a typical batch has enough requests for the statistic.

    A quantile q needs ~``tail`` / (1 − q) requests (by default p95: 200, p99: 1,000); a mean needs 10.
    """
    needed = 10.0 if isinstance(statistic, str) else tail / (1.0 - float(statistic))
    typical = float(np.median(counts)) if len(counts) else 0.0
    return max(1, math.ceil(needed / typical)) if typical > 0 else len(counts) + 1


def stationary_bootstrap_weights(
    windows: int, *, replicates: int, block: float, rng: np.random.Generator
) -> NDArray[np.float64]:
    """How often each window is drawn in each replicate (Politis & Romano's stationary bootstrap)."""
    index = np.empty((replicates, windows), dtype=np.int64)
    index[:, 0] = rng.integers(0, windows, replicates)
    restart = rng.random((replicates, windows)) < 1.0 / block
    fresh = rng.integers(0, windows, (replicates, windows))
    for t in range(1, windows):
        index[:, t] = np.where(restart[:, t], fresh[:, t], (index[:, t - 1] + 1) % windows)
    flat = index + windows * np.arange(replicates)[:, None]
    return np.bincount(flat.ravel(), minlength=replicates * windows).reshape(replicates, windows).astype(float)


def _whole_run_log_ratio(
    base: WindowMatrix, current: WindowMatrix, statistic: float | str, values: NDArray[np.float64]
) -> float | None:
    """log(current / base) of the statistic over all windows of each arm; None when undefined."""
    whole = [
        statistic_rows(m.bins.sum(axis=0, keepdims=True), np.array([m.sums.sum()]), statistic, values)[0]
        for m in (base, current)
    ]
    if not all(np.isfinite(whole)) or min(whole) <= 0:
        return None
    return math.log(whole[1] / whole[0])


def _percentile_interval(ratios: NDArray[np.float64], replicates: int) -> tuple[float, float] | None:
    """The 95 % percentile interval of bootstrap log ratios (None when most resamples were empty)."""
    finite = ratios[np.isfinite(ratios)]
    if len(finite) < replicates // 2:
        return None
    low, high = np.quantile(finite, [(1 - CONFIDENCE) / 2, (1 + CONFIDENCE) / 2])
    return float(low), float(high)


def windows_test(pair: WindowPair, test: Resampling, *, run_variance: float = 0.0) -> Estimate | None:
    """One run against one or two earlier runs (pooled), from their windows.

    p-values and MDE: Welch's test on batch means of the log statistic, each arm's variance inflated
    by (1 + ρ)/(1 − ρ) for its lag-1 autocorrelation ρ. Effect: the whole-run log ratio. Interval:
    percentiles of a stationary block bootstrap of the whole-run ratio (block length from ρ).
    Windows cannot show run-to-run noise; ``run_variance`` (log scale, an assumed prior) is added to
    the variance of the test and widens the interval, so that two runs that differ only by the
    usual run-to-run offset are not called different.
    """
    base, current, values, statistic = pair
    alpha, power, replicates, rng = test
    arms = []
    for matrix in (base, current):
        size = batch_size(matrix.counts, statistic)
        batches = _batches(matrix, size)
        series = np.log(statistic_rows(batches.bins, batches.sums, statistic, values))
        series = series[np.isfinite(series)]
        if len(series) < MIN_BATCHES:
            return None
        rho = lag1_autocorrelation(series)
        n_eff = len(series) * (1 - rho) / (1 + rho)
        arms.append((series, max(n_eff, 2.0), rho))
    (b_series, b_n, b_rho), (c_series, c_n, c_rho) = arms
    b_var = float(np.var(b_series, ddof=1)) / b_n
    c_var = float(np.var(c_series, ddof=1)) / c_n
    se = math.sqrt(max(b_var + c_var + run_variance, 1e-18))
    # Welch-Satterthwaite; the assumed run variance is a constant with no sampling error (infinite df)
    spread = (b_var**2) / max(b_n - 1, 1) + (c_var**2) / max(c_n - 1, 1)
    df = (b_var + c_var + run_variance) ** 2 / spread if spread > 0 else math.inf
    effect = _whole_run_log_ratio(base, current, statistic, values)
    if effect is None:
        return None
    up, down = one_sided(float(np.mean(c_series) - np.mean(b_series)) / se, df)
    draws = []
    for matrix, rho in ((base, b_rho), (current, c_rho)):
        block = min(max((1 + rho) / (1 - rho), 1.0), max(len(matrix.counts) / 3, 1.0))
        weights = stationary_bootstrap_weights(len(matrix.counts), replicates=replicates, block=block, rng=rng)
        draws.append(statistic_rows(weights @ matrix.bins, weights @ matrix.sums, statistic, values))
    with np.errstate(invalid="ignore", divide="ignore"):
        ratios = np.log(draws[1] / draws[0])
    interval = _percentile_interval(ratios, replicates)
    if interval is None:
        return None
    low, high = interval
    if run_variance > 0:
        widen = (t_quantile(0.5 + CONFIDENCE / 2, math.inf) ** 2) * run_variance
        low = effect - math.sqrt((effect - low) ** 2 + widen)
        high = effect + math.sqrt((high - effect) ** 2 + widen)
    return Estimate(effect, low, high, up, down, mde_of(se, df, alpha=alpha, power=power), se, df)


# -- duet mode ---------------------------------------------------------------------------------


def paired_test(pair: WindowPair, test: Resampling) -> Estimate | None:
    """Head against base measured in the same windows (row i of both matrices is the same time span).

    Windows are grouped into batches (smaller than in ``windows_test``: each user's twin runs the same
    code with the same random draws against the base, in lockstep, and which starts first is a coin
    flip, so the arms are exchangeable when nothing changed and a small batch's quantile is biased
    alike in both: d stays centred on 0); each batch gives d = log(head statistic) −
    log(base statistic), and noise shared by the arms (the runner, the network, the moment) cancels in d.
    p-values and MDE: a one-sample t-test of mean(d) with the
    variance inflated by (1 + ρ)/(1 − ρ) for d's lag-1 autocorrelation. Effect: the whole-run log
    ratio; interval: a stationary block bootstrap drawing the same windows for both arms.
    The sd of d is at least the quantisation error of two sketches.
    """
    base, current, values, statistic = pair
    alpha, power, replicates, rng = test
    size = max(
        batch_size(base.counts, statistic, tail=PAIRED_TAIL), batch_size(current.counts, statistic, tail=PAIRED_TAIL)
    )
    b, c = _batches(base, size), _batches(current, size)
    with np.errstate(invalid="ignore", divide="ignore"):
        d = np.log(statistic_rows(c.bins, c.sums, statistic, values)) - np.log(
            statistic_rows(b.bins, b.sums, statistic, values)
        )
    # a batch cut short (the run's last, partial window) has too few requests for its statistic
    fewest = np.minimum(b.counts, c.counts)
    typical = float(np.median(fewest)) if len(fewest) else 0.0
    d = d[np.isfinite(d) & (fewest >= typical / 2)]
    if len(d) < MIN_BATCHES:
        return None
    rho = lag1_autocorrelation(d)
    n_eff = max(len(d) * (1 - rho) / (1 + rho), 2.0)
    sd = max(float(np.std(d, ddof=1)), QUANTISATION_SD * math.sqrt(2))
    se = sd / math.sqrt(n_eff)
    df = n_eff - 1
    effect = _whole_run_log_ratio(base, current, statistic, values)
    if effect is None:
        return None
    up, down = one_sided(float(np.mean(d)) / se, df)
    block = min(max((1 + rho) / (1 - rho), float(size)), max(len(base.counts) / 3, 1.0))
    weights = stationary_bootstrap_weights(len(base.counts), replicates=replicates, block=block, rng=rng)
    with np.errstate(invalid="ignore", divide="ignore"):
        ratios = np.log(
            statistic_rows(weights @ current.bins, weights @ current.sums, statistic, values)
            / statistic_rows(weights @ base.bins, weights @ base.sums, statistic, values)
        )
    interval = _percentile_interval(ratios, replicates)
    if interval is None:
        return None
    low, high = interval
    return Estimate(effect, low, high, up, down, mde_of(se, df, alpha=alpha, power=power), se, df)
