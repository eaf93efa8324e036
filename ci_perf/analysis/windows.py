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


def batches(matrix: WindowMatrix, size: int) -> WindowMatrix:
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


def log_batch_series(matrix: WindowMatrix, statistic: float | str, values: NDArray[np.float64]) -> NDArray[np.float64]:
    """The log statistic of each batch of windows (``batch_size``), in time order; undefined batches left out."""
    grouped = batches(matrix, batch_size(matrix.counts, statistic))
    series = np.log(statistic_rows(grouped.bins, grouped.sums, statistic, values))
    return series[np.isfinite(series)]


def long_run_variance(series: NDArray[np.float64]) -> tuple[float, float]:
    """The variance of ``series``' mean when its terms are autocorrelated, and its degrees of freedom.

    Windows of one run share slow noise (a noisy neighbour for a minute): their lag-1 autocorrelation
    is 0.5-0.9 and a few dozen of them cannot show it well (the sample estimate is biased low by about
    (1 + 3ρ)/m, and the sample variance misses the share of the slow noise that the run's own mean
    holds). Two estimates, the larger kept:

    * AR(1): ρ corrected for that bias, the exact variance factor of an m-term mean
      f = 1 + 2 Σₖ (1 − k/m) ρᵏ, and the variance itself corrected for the same loss: s² (m − 1)/(m − f);
    * batch means: the terms merged into batches twice the autocorrelation time (1 + ρ)/(1 − ρ) long
      (at least 3 batches), the variance of their mean, on batches − 1 degrees of freedom, which the
      estimate carries: with few batches its t has fat tails, as it must.
    """
    m = len(series)
    centred = series - series.mean()
    denominator = float(np.dot(centred, centred))
    rho = float(np.dot(centred[:-1], centred[1:]) / denominator) if denominator > 0 else 0.0
    rho = min(max(rho + (1 + 3 * rho) / m, 0.0), MAX_RHO)
    lags = np.arange(1, m)
    factor = min(1 + 2 * float(np.sum((1 - lags / m) * rho**lags)), m / 2)
    ar1 = float(np.var(series, ddof=1)) * (m - 1) / (m - factor) * factor / m
    span = math.ceil(2 * (1 + rho) / (1 - rho))
    count = min(max(m // span, 3), m)
    size = m // count
    means = series[: size * count].reshape(count, size).mean(axis=1)
    return max(ar1, float(np.var(means, ddof=1)) / count), float(count - 1)


def _pivot(effect: float, se: float, df: float, test: Resampling) -> Estimate:
    """p-values, interval and MDE from one pivot, t = effect / se with ``df`` degrees of freedom: the
    interval excludes 0 exactly when a one-sided p is below (1 − CONFIDENCE) / 2."""
    up, down = one_sided(effect / se, df)
    half = t_quantile(0.5 + CONFIDENCE / 2, df) * se
    return Estimate(
        effect, effect - half, effect + half, up, down, mde_of(se, df, alpha=test.alpha, power=test.power), se, df
    )


def windows_test(
    pair: WindowPair, test: Resampling, *, run_variance: float = 0.0, run_df: float = math.inf
) -> Estimate | None:
    """One run against one or two earlier runs (pooled), from their windows: one pivot.

    Effect: the whole-run log ratio. Its variance: each arm's long-run variance (``long_run_variance``
    of the log statistic over batches of windows: windows of a run are autocorrelated) plus
    ``run_variance``, the run-to-run noise that windows cannot show (log scale; learned from the
    store's other histories with ``run_df`` degrees of freedom, or assumed: infinite). The degrees of
    freedom combine the three by Welch-Satterthwaite; p-values and the 95 % interval come from the
    same t = effect / se.
    """
    base, current, values, statistic = pair
    parts = []
    for matrix in (base, current):
        series = log_batch_series(matrix, statistic, values)
        if len(series) < MIN_BATCHES:
            return None
        parts.append(long_run_variance(series))
    effect = _whole_run_log_ratio(base, current, statistic, values)
    if effect is None:
        return None
    parts.append((run_variance, run_df))
    variance = sum(v for v, _ in parts)
    spread = sum(v**2 / df for v, df in parts if v > 0 and math.isfinite(df))
    df = variance**2 / spread if spread > 0 else math.inf
    return _pivot(effect, math.sqrt(max(variance, 1e-18)), df, test)


# -- duet mode ---------------------------------------------------------------------------------


def paired_test(pair: WindowPair, test: Resampling) -> Estimate | None:
    """Head against base measured in the same windows (row i of both matrices is the same time span).

    Effect: the whole-run log ratio. Its standard error: the spread of a stationary block bootstrap
    that draws the same windows for both arms, so that the noise the arms share (the runner, the
    network, the moment) cancels in every resample. p-values and the 95 % interval come from the same
    pivot, t = effect / se, on the paired batches' degrees of freedom n_eff − 1, at least 3 (a z on the bootstrap's
    se gave 2 % of A/A tests p < 0.01, docs/benchmarks.md). Batches: windows grouped so that a quantile
    q has about 2 / (1 − q) requests per arm (each user's twin runs the same code with the same random
    draws against the base, in lockstep, so the arms are exchangeable when nothing changed), each
    giving d = log(head statistic) − log(base statistic); d's lag-1 autocorrelation ρ sets the
    bootstrap's block length (at least one batch) and n_eff = batches · (1 − ρ)/(1 + ρ); fewer than 4
    batches is not enough data. The se is at least the quantisation error of two sketches.
    """
    base, current, values, statistic = pair
    size = max(
        batch_size(base.counts, statistic, tail=PAIRED_TAIL), batch_size(current.counts, statistic, tail=PAIRED_TAIL)
    )
    b, c = batches(base, size), batches(current, size)
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
    effect = _whole_run_log_ratio(base, current, statistic, values)
    if effect is None:
        return None
    rho = lag1_autocorrelation(d)
    block = min(max((1 + rho) / (1 - rho), float(size)), max(len(base.counts) / 3, 1.0))
    weights = stationary_bootstrap_weights(len(base.counts), replicates=test.replicates, block=block, rng=test.rng)
    with np.errstate(invalid="ignore", divide="ignore"):
        ratios = np.log(
            statistic_rows(weights @ current.bins, weights @ current.sums, statistic, values)
            / statistic_rows(weights @ base.bins, weights @ base.sums, statistic, values)
        )
    finite = ratios[np.isfinite(ratios)]
    if len(finite) < test.replicates // 2:
        return None
    se = max(float(np.std(finite, ddof=1)), QUANTISATION_SD * math.sqrt(2 / len(d)))
    # at least 3 degrees of freedom: a few batches of a large change can show ρ near its cap (a t on 1 df
    # turned +200 % into [-56 %, +1929 %]); the bootstrap's blocks carry the autocorrelation in se itself
    return _pivot(effect, se, max(len(d) * (1 - rho) / (1 + rho) - 1, MIN_BATCHES - 1.0), test)


class RunNoise(NamedTuple):
    """The run-to-run variance of one metric's log value (single mode), and where it came from."""

    variance: float
    df: float  # infinite for an assumed value
    runs: int = 0  # the stored runs it was learned from (0: assumed, ``comparison.run_noise_percent``)
    histories: int = 0  # the histories (scenarios) those runs belong to
