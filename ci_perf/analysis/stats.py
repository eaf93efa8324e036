"""The statistical tests behind the verdicts. Pure math on numbers and sketches; docs/STATISTICS.md explains each.

* ``history_test``: one new run against n ≥ 3 earlier runs — Student-t prediction interval on logs.
* ``windows_test``: one run against one or two runs — batch means of log window statistics (Welch,
  variance inflated for lag-1 autocorrelation) and a stationary block bootstrap of the whole-run ratio.
* ``paired_test``: duet mode — both deployments measured in the same windows: a one-sample t-test on
  the per-batch log ratios (variance inflated for lag-1 autocorrelation) and a stationary block
  bootstrap that resamples the same windows in both arms.
* error rates are tested in ``analysis.rates`` (quasi-binomial, over-dispersion in every mode).

Every function returns an ``Estimate`` in log-ratio space (or percentage points for counts) with
one-sided p-values for an increase and for a decrease (regressions and improvements are two
families, each adjusted on its own), a 95 % interval and the minimum detectable effect; tiny
samples give ``None`` ("not enough data"), never a crash or a made-up number.

``scipy.stats`` takes about a second to import, longer than Locust takes to start: it is imported on
first use (``_scipy``), and ``warm_up`` imports it on a thread while the load test starts, so that a
run's wall time does not wait for it (docs/benchmarks.md, "Wall time beyond the duration").
"""

from __future__ import annotations

import functools
import importlib
import math
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import NamedTuple

import numpy as np
from numpy.typing import NDArray

from ci_perf import sketches
from ci_perf.sketches import RELATIVE_ACCURACY, Sketch

CONFIDENCE = 0.95
MIN_BATCHES = 4
MAX_RHO = 0.9
# A sketch knows a quantile only to within ±1 %: read as a uniform error, an sd of 1 %/√3 on the log
# scale. History values that all fell into one bucket must not claim a zero-width interval.
QUANTISATION_SD = RELATIVE_ACCURACY / math.sqrt(3)
# empirical-Bayes pooling tops an endpoint's degrees of freedom up to this many (what 20 runs give): it
# serves short histories; a long one keeps its own t tails, which heavy-tailed metrics (mean, p99) need
POOLED_DF = 19.0
# duet batches: a quantile q from ~2 / (1 − q) requests per arm (p95: 40), see paired_test
PAIRED_TAIL = 2.0
# the robust mean as a window statistic (``sketches.winsorised_mean_rows``; issue 13, item 5)
WINSORISED_MEAN = "winsorised mean"


@dataclass(frozen=True)
class Estimate:
    """An effect with its uncertainty. ``effect`` and the interval are in the test's scale."""

    effect: float
    low: float
    high: float
    p_up: float  # one-sided: the chance of an increase this large with no real change
    p_down: float  # one-sided, for a decrease
    mde: float
    se: float
    df: float


@functools.cache
def _scipy() -> ModuleType:
    """``scipy.stats``, imported once, on first use."""
    return importlib.import_module("scipy.stats")  # a second of import, overlapped with Locust starting


def warm_up() -> threading.Thread:
    """Import ``scipy.stats`` on a daemon thread (while Locust starts); the tests then find it loaded."""
    thread = threading.Thread(target=_scipy, name="ci-perf-import-scipy", daemon=True)
    thread.start()
    return thread


def _t_quantile(p: float, df: float) -> float:
    return float(_scipy().t.ppf(p, df)) if math.isfinite(df) else float(_scipy().norm.ppf(p))


def mde_of(se: float, df: float, *, alpha: float, power: float) -> float:
    """Smallest true effect found with probability ``power`` by a one-sided test at ``alpha``."""
    return (_t_quantile(1 - alpha, df) + _t_quantile(power, df)) * se


def rule_mde(se: float, df: float, *, q: float, family: int, power: float, bound: float, floor: float = 0.0) -> float:
    """The true effect that the verdict rule calls a regression with probability ``power``.

    The rule needs, on the same pivot effect / se: Benjamini-Hochberg significance — for the one
    changed test of a ``family`` of tests, p < q / family —, a 95 % interval beyond ``bound``
    (``min_effect_percent``), and an effect beyond ``floor`` (``min_abs_ms``): the estimate must clear
    the largest of the three thresholds, which it does with probability ``power`` when the true effect
    lies t_power · se above it. docs/STATISTICS.md; checked against simulation in docs/benchmarks.md.
    """
    threshold = max(
        _t_quantile(1 - q / max(family, 1), df) * se, bound + _t_quantile(0.5 + CONFIDENCE / 2, df) * se, floor
    )
    return threshold + _t_quantile(power, df) * se


def _one_sided(t: float, df: float) -> tuple[float, float]:
    if math.isfinite(df):
        return float(_scipy().t.sf(t, df)), float(_scipy().t.cdf(t, df))
    return float(_scipy().norm.sf(t)), float(_scipy().norm.cdf(t))


# the same pivots, for the other tests of the package (analysis.rates)
t_quantile = _t_quantile
one_sided = _one_sided


# -- history mode ------------------------------------------------------------------------------


@dataclass(frozen=True)
class VariancePrior:
    """A scaled-χ² prior of one metric's log-scale variance across endpoints (empirical Bayes): s₀², d₀."""

    variance: float
    df: float


@functools.cache
def _special() -> ModuleType:
    return importlib.import_module("scipy.special")


def _trigamma_inverse(x: float) -> float:
    """y with trigamma(y) = x (Newton's method, as limma's ``trigammaInverse``)."""
    if x > 1e7:
        return 1 / math.sqrt(x)
    if x < 1e-6:
        return 1 / x
    y = 0.5 + 1 / x
    for _ in range(50):
        tri = float(_special().polygamma(1, y))
        step = tri * (1 - tri / x) / float(_special().polygamma(2, y))
        y += step
        if -step / y < 1e-8:
            break
    return y


def variance_prior(variances: Sequence[float], *, df: float) -> VariancePrior | None:
    """Smyth's (2004) moment estimate of the prior of per-endpoint variances, each with ``df`` df.

    d₀ is capped at ``POOLED_DF`` − df: pooling lends a short history the degrees of freedom of a
    long one, never more (a pooled t with hundreds of df has normal tails, and a run-level mean or
    p99 under heavy tails does not). None with fewer than 3 positive variances, or df ≥ ``POOLED_DF``.
    """
    positive = np.asarray([v for v in variances if v > 0], dtype=float)
    cap = POOLED_DF - df
    if len(positive) < 3 or df <= 0 or cap <= 0:
        return None
    special = _special()
    z = np.log(positive) - float(special.digamma(df / 2)) + math.log(df / 2)
    excess = float(np.var(z, ddof=1)) - float(special.polygamma(1, df / 2))
    prior_df = cap if excess <= 0 else min(2 * _trigamma_inverse(excess), cap)
    scale = float(special.digamma(prior_df / 2)) - math.log(prior_df / 2)
    return VariancePrior(math.exp(float(z.mean()) + scale), prior_df)


def variance_outliers(
    variances: Sequence[float], *, df: float, prior: VariancePrior, level: float = 0.95
) -> list[bool]:
    """Which variances are too large to come from ``prior`` (one-sided F test at ``level``).

    An endpoint noisier than the rest (few requests, a p99 from a few hundred) must not have its
    variance pooled toward theirs: its own spread, with its own degrees of freedom, judges it.
    """
    limit = prior.variance * float(_scipy().f.ppf(level, df, prior.df))
    return [v > limit for v in variances]


def history_test(
    history: Sequence[float],
    current: float,
    *,
    alpha: float,
    power: float,
    prior: VariancePrior | None = None,
    logs: bool = False,
) -> Estimate | None:
    """Is ``current`` outside what ``history`` predicts? Log scale; needs ≥ 3 positive values.

    δ = log(current) − mean(log history); se = sd·√(1 + 1/n); t with n − 1 degrees of freedom.
    With a ``prior`` (``variance_prior``) the variance is the posterior (d₀·s₀² + (n−1)·s²)/(d₀ + n − 1)
    with d₀ + n − 1 degrees of freedom. ``logs``: the values are log values already.
    The sd is at least the sketches' quantisation error (``QUANTISATION_SD``).
    """
    values = list(history) if logs else [math.log(v) for v in history if v > 0]
    if len(values) < 3 or (not logs and current <= 0):
        return None
    n = len(values)
    mean = float(np.mean(values))
    variance = float(np.var(values, ddof=1))
    df: float = n - 1
    if prior is not None:
        variance = (prior.df * prior.variance + df * variance) / (prior.df + df)
        df += prior.df
    sd = max(math.sqrt(variance), QUANTISATION_SD)
    se = sd * math.sqrt(1 + 1 / n)
    effect = (current if logs else math.log(current)) - mean
    up, down = _one_sided(effect / se, df)
    half = _t_quantile(0.5 + CONFIDENCE / 2, df) * se
    return Estimate(effect, effect - half, effect + half, up, down, mde_of(se, df, alpha=alpha, power=power), se, df)


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
    up, down = _one_sided(float(np.mean(c_series) - np.mean(b_series)) / se, df)
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
        widen = (_t_quantile(0.5 + CONFIDENCE / 2, math.inf) ** 2) * run_variance
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
    up, down = _one_sided(float(np.mean(d)) / se, df)
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


# -- the report ------------------------------------------------------------------------------


def benjamini_hochberg(p_values: Sequence[float]) -> list[float]:
    """BH-adjusted p-values (the false discovery rate at which each test would be called)."""
    if not p_values:
        return []
    return [float(x) for x in _scipy().false_discovery_control(np.asarray(p_values, dtype=float), method="bh")]
