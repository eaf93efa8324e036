"""History mode across endpoints: each run's shared offset, and variances pooled over endpoints.

Pure math on run-level values (docs/STATISTICS.md, "History"). One unusual run — a slower runner,
a noisy neighbour — moves every endpoint of that run together. Judged endpoint by endpoint, that
shared offset is noise each endpoint's history has to carry (it widens every interval) and, in the
current run, a common shift that moves all tests at once (most simulated false alarms were such
runs). So, for each metric, with at least ``MIN_ENDPOINTS`` endpoints measured in every run:

* each run's **shared offset** as seen by endpoint e is the median, over the *other* endpoints, of
  (log value − that endpoint's baseline mean): robust to one endpoint that really changed, and
  never fed by e's own value;
* each endpoint is judged on its own change: its log values net of that offset, baseline runs and
  current run alike, so the prediction interval of ``stats.history_test`` holds as before (the
  offset's estimation noise is in the baseline's spread too);
* its variance is **pooled** over the endpoints (empirical Bayes, Smyth 2004): the per-endpoint
  variances are shrunk toward their common level by the prior's weight d₀, which the spread of the
  variances themselves decides (alike: much pooling, more degrees of freedom; unlike: little); an
  endpoint whose variance is too large for that prior (an F test: few requests, a noisy p99) is not
  pooled at all;
* the shared shift itself is judged by the aggregate's own (unadjusted) test, so a change that slows
  every endpoint is still caught there.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from ci_perf.analysis import stats

MIN_ENDPOINTS = 5  # fewer: the median of the others is mostly one endpoint's own noise


@dataclass(frozen=True)
class NetHistory:
    """One endpoint's log values net of each run's shared offset, and the prior its variance pools with."""

    history: list[float]  # baseline runs, oldest first
    current: float
    prior: stats.VariancePrior | None
    shift: float  # the current run's shared offset against the baseline (log scale), as this endpoint saw it


def net_of_shared_offset(values: Mapping[str, tuple[Sequence[float | None], float | None]]) -> dict[str, NetHistory]:
    """For each endpoint measured (> 0) in every baseline run and in the current run, its net log values.

    ``values``: endpoint → (its value in each baseline run, aligned by run, None where missing;
    its value in the current run). Empty when fewer than ``MIN_ENDPOINTS`` endpoints qualify or
    fewer than 3 baseline runs: the endpoints are then judged on their own (``stats.history_test``).
    """
    complete = {
        name: [*history, current]
        for name, (history, current) in values.items()
        if current is not None and all(v is not None and v > 0 for v in (*history, current))
    }
    if len(complete) < MIN_ENDPOINTS:
        return {}
    names = sorted(complete)
    logs = np.log(np.array([complete[n] for n in names], dtype=float)).T  # runs (current last) × endpoints
    runs = logs.shape[0] - 1
    if runs < 3:
        return {}
    centred = logs - logs[:-1].mean(axis=0)
    net = np.empty_like(logs)
    shifts = np.empty(len(names))
    for e in range(len(names)):
        offsets = np.median(np.delete(centred, e, axis=1), axis=1)  # each run's shared offset, without e
        net[:, e] = logs[:, e] - offsets
        shifts[e] = offsets[-1] - offsets[:-1].mean()
    variances = [float(np.var(net[:-1, e], ddof=1)) for e in range(len(names))]
    endpoint_priors = priors(variances, df=runs - 1)
    return {
        name: NetHistory([float(x) for x in net[:-1, e]], float(net[-1, e]), endpoint_priors[e], float(shifts[e]))
        for e, name in enumerate(names)
    }


def priors(variances: list[float], *, df: float) -> list[stats.VariancePrior | None]:
    """Each endpoint's prior: the one pooled over the endpoints alike; None for an endpoint noisier than
    them (``stats.variance_outliers``), which keeps its own variance. The prior is estimated again
    without the noisier ones, so that they do not lower the pooling of the rest."""
    prior = stats.variance_prior(variances, df=df)
    if prior is None:
        return [None] * len(variances)
    noisy = stats.variance_outliers(variances, df=df, prior=prior)
    if any(noisy):
        prior = stats.variance_prior([v for v, out in zip(variances, noisy, strict=True) if not out], df=df)
    return [None if out else prior for out in noisy]


def shared_shift_percent(nets: Mapping[str, NetHistory]) -> float | None:
    """The current run's shared offset against the baseline, in % (the median over endpoints)."""
    if not nets:
        return None
    return 100 * math.expm1(float(np.median([n.shift for n in nets.values()])))
