"""Error rates: this run's failures against the baseline's, as over-dispersed counts, in every mode.

Failures come in bursts — a dependency times out for two seconds, a pod restarts — so the failure
counts of windows and runs vary far more than independent coin flips would, most of all on an
endpoint with little traffic, where one burst is most of a run's failures. Fisher's exact test on the
raw counts called such a burst a regression in 5–8 % of A/A reports (issue 13, item 4).

The test is quasi-binomial: the binomial variance times an over-dispersion φ, estimated as Pearson's
χ² over its degrees of freedom, pooled over the baseline's units (runs in history mode, windows in
single and duet modes) and the current run's windows, each around its own rate; the pivot is Student-t
with the pooled degrees of freedom (units − 1 per source). The variance adds one failure and one
success to each arm (Agresti & Caffo 2000), so that an arm without failures still has a variance —
an interval is never zero-width — and the p-values and the interval come from that one pivot, so
they never disagree. The smallest change worth a verdict is ``min_error_rate_points`` or
``MIN_EXTRA_FAILURES`` failures of this run's requests, whichever is larger (``smallest_change``): two
failures on a quiet endpoint are nobody's regression, whatever the rates say. docs/STATISTICS.md,
"Error rate".
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from ci_perf.analysis import stats

# the fewest failures, as a share of this run's requests, that make an error-rate change worth a verdict
MIN_EXTRA_FAILURES = 5


@dataclass(frozen=True)
class RateEstimate(stats.Estimate):
    """An error-rate difference in percentage points, and the requests of the current arm it is over."""

    requests: int


class Counts(NamedTuple):
    """Failures and requests of one unit (a run or a window) or of a whole arm."""

    failures: int
    requests: int


class Spread(NamedTuple):
    """Pearson's χ² of some units' failures around their own rate, and its degrees of freedom."""

    chi2: float
    df: int


def pearson(units: Sequence[Counts]) -> Spread:
    """χ² = Σ (f − n·p)² / (n·p·(1 − p)) around the units' pooled rate p; df = units − 1.

    Units without requests are left out; units without any failure (or all failures) show no spread
    and count no degrees of freedom either: they say nothing about how failures cluster.
    """
    f = np.array([u.failures for u in units if u.requests > 0], dtype=float)
    n = np.array([u.requests for u in units if u.requests > 0], dtype=float)
    if len(n) < 2 or f.sum() <= 0 or f.sum() >= n.sum():
        return Spread(0.0, 0)
    p = f.sum() / n.sum()
    return Spread(float((((f - n * p) ** 2) / (n * p * (1 - p))).sum()), len(n) - 1)


def dispersion(units: Sequence[Counts]) -> float:
    """Quasi-binomial over-dispersion φ = χ² / df of the units, at least 1 (1 without spread to measure)."""
    spread = pearson(units)
    return max(1.0, spread.chi2 / spread.df) if spread.df else 1.0


def restricted_rates(current: Counts, base: Counts, delta: float) -> tuple[float, float]:
    """The rates (current, base) of highest likelihood whose difference is ``delta`` (Farrington & Manning 1990)."""
    (x1, n1), (x2, n2) = current, base
    p1, p2 = x1 / n1, x2 / n2
    theta = n2 / n1
    a = 1 + theta
    b = -(1 + theta + p1 + theta * p2 + delta * (theta + 2))
    c = delta**2 + delta * (2 * p1 + theta + 1) + p1 + theta * p2
    d = -p1 * delta * (1 + delta)
    v = b**3 / (3 * a) ** 3 - b * c / (6 * a**2) + d / (2 * a)
    u = math.copysign(math.sqrt(max(b**2 / (3 * a) ** 2 - c / (3 * a), 0.0)), v)
    w = (math.pi + math.acos(min(max(v / u**3, -1.0), 1.0))) / 3 if u != 0 else math.pi / 2
    rate = min(max(2 * u * math.cos(w) - b / (3 * a), delta, 0.0), 1.0, 1.0 + delta)
    return rate, rate - delta


def _score(current: Counts, base: Counts, delta: float, phi: float) -> float:
    """(observed difference − delta) / its sd when the true difference is ``delta`` (rates as fractions)."""
    r1, r2 = restricted_rates(current, base, delta)
    variance = phi * (r1 * (1 - r1) / current.requests + r2 * (1 - r2) / base.requests)
    observed = current.failures / current.requests - base.failures / base.requests
    if variance <= 0:
        return 0.0 if observed == delta else math.copysign(math.inf, observed - delta)
    return (observed - delta) / math.sqrt(variance)


def _bound(current: Counts, base: Counts, phi: float, critical: float, side: float) -> float:
    """The end of the interval on ``side`` (+1 upper, −1 lower): where the score reaches ∓``critical``."""
    inside = current.failures / current.requests - base.failures / base.requests
    outside = side * 1.0 - 1e-12 * side
    if -side * _score(current, base, outside, phi) <= critical:
        return outside
    for _ in range(60):  # bisection: the score falls monotonically in delta
        middle = (inside + outside) / 2
        if -side * _score(current, base, middle, phi) > critical:
            outside = middle
        else:
            inside = middle
    return (inside + outside) / 2


def rate_test(
    base: Sequence[Counts],
    current: Sequence[Counts],
    *,
    totals: Counts | None = None,
    alpha: float,
    power: float,
) -> RateEstimate | None:
    """The current arm's error rate against the base's, in percentage points.

    ``base``: the baseline's units (runs or windows); ``current``: the current run's windows;
    ``totals``: the current run's counts when they are not the sum of its windows (history mode reads
    the run's totals). φ is pooled from both (at least 1); t has their pooled degrees of freedom
    (∞ when neither shows any spread: the binomial variance is then taken as known). The pivot is the
    score statistic (Miettinen & Nurminen 1985) scaled by φ: the p-values test a difference of 0 with
    the rates' variance under that difference, and the interval is every difference the same test
    does not reject at 5 % — it never has zero width, and it excludes 0 exactly when p < 2.5 %.
    """
    arm = totals if totals is not None else Counts(sum(u.failures for u in current), sum(u.requests for u in current))
    pooled = Counts(sum(u.failures for u in base), sum(u.requests for u in base))
    if pooled.requests <= 0 or arm.requests <= 0:
        return None
    spreads = [pearson(base), pearson(current)]
    df = sum(s.df for s in spreads)
    phi = max(1.0, sum(s.chi2 for s in spreads) / df) if df else 1.0
    dof = float(df) if df else math.inf
    z = _score(arm, pooled, 0.0, phi)
    up, down = stats.one_sided(z, dof) if math.isfinite(z) else (float(z < 0), float(z > 0))
    if arm.failures + pooled.failures == 0:
        up = down = 1.0
    critical = stats.t_quantile(0.5 + stats.CONFIDENCE / 2, dof)
    low, high = (100 * _bound(arm, pooled, phi, critical, side) for side in (-1.0, 1.0))
    rate = (arm.failures + pooled.failures) / (arm.requests + pooled.requests)
    null_se = 100 * math.sqrt(phi * max(rate * (1 - rate), 1 / arm.requests) * (1 / arm.requests + 1 / pooled.requests))
    effect = 100 * (arm.failures / arm.requests - pooled.failures / pooled.requests)
    return RateEstimate(
        effect,
        low,
        high,
        up,
        down,
        stats.mde_of(null_se, dof, alpha=alpha, power=power),
        null_se,
        dof,
        requests=arm.requests,
    )


def smallest_change(estimate: stats.Estimate, points: float) -> float:
    """The smallest error-rate change worth a verdict, in points: ``points`` (``min_error_rate_points``) or
    ``MIN_EXTRA_FAILURES`` failures of the current run's requests, whichever is larger."""
    if isinstance(estimate, RateEstimate):
        return max(points, 100 * MIN_EXTRA_FAILURES / estimate.requests)
    return points
