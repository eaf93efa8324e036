"""The statistical tests behind the verdicts. Pure math on numbers and sketches; docs/STATISTICS.md explains each.

* ``history_test``: one new run against n ≥ 3 earlier runs — Student-t prediction interval on logs.
* the window tests of single and duet modes are in ``analysis.windows`` (``windows_test``, ``paired_test``).
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

import numpy as np

from ci_perf.sketches import RELATIVE_ACCURACY

CONFIDENCE = 0.95
# A sketch knows a quantile only to within ±1 %: read as a uniform error, an sd of 1 %/√3 on the log
# scale. History values that all fell into one bucket must not claim a zero-width interval.
QUANTISATION_SD = RELATIVE_ACCURACY / math.sqrt(3)
# empirical-Bayes pooling tops an endpoint's degrees of freedom up to this many (what 20 runs give): it
# serves short histories; a long one keeps its own t tails, which heavy-tailed metrics (mean, p99) need
POOLED_DF = 19.0
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
    changed test of a ``family`` of tests, p < q / family —, an estimated effect beyond ``bound``
    (``min_effect_percent``) and beyond ``floor`` (``min_abs_ms``): the estimate must clear the largest
    of the three thresholds, which it does with probability ``power`` when the true effect lies
    t_power · se above it. docs/STATISTICS.md; checked against simulation in docs/benchmarks.md.
    """
    threshold = max(_t_quantile(1 - q / max(family, 1), df) * se, bound, floor)
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


# -- the report ------------------------------------------------------------------------------


def benjamini_hochberg(p_values: Sequence[float]) -> list[float]:
    """BH-adjusted p-values (the false discovery rate at which each test would be called)."""
    if not p_values:
        return []
    return [float(x) for x in _scipy().false_discovery_control(np.asarray(p_values, dtype=float), method="bh")]
