"""Run-to-run noise learned from the store, for single-baseline mode (issue 13, item 7).

With one or two baseline runs a run's windows cannot show how much whole runs differ; the store can.
Every history it holds with 3 or more runs (other scenarios', and this one's when it has them) shows,
for each endpoint and latency metric, how the run-level log value varies from run to run. Part of
that spread is the within-run noise the window test already counts (the slow noise of the windows,
the sampling noise of the quantile), so each run's own within-run variance (``windows.long_run_variance``,
the same estimate the test uses) is subtracted:

    σ²_run = Σ d (s² − w̄) / Σ d,   d = runs − 1,   w̄ = the mean within-run variance of those runs,

pooled over endpoints and histories, at least 0. The endpoints of one run share that run's offset,
so they are not independent witnesses of it: the degrees of freedom are those of the runs, Σ (runs − 1)
over the histories, capped at ``stats.POOLED_DF`` (never more than a 20-run history claims). Where
the window estimate is biased the subtraction carries the bias into σ²_run, so their sum, the variance
the test uses, stays right. Pure: runs in, numbers out; docs/STATISTICS.md.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from ci_perf.analysis import stats, windows
from ci_perf.analysis.compare import METRICS, STATISTIC
from ci_perf.results import RunResult, is_measured

MIN_RUNS = 3


def learn_run_noise(histories: Sequence[Sequence[RunResult]]) -> dict[str, windows.RunNoise]:
    """Each latency metric's run-to-run noise, from ``histories`` (lists of runs of one scenario each).

    A metric no history with ``MIN_RUNS`` runs shows is left out: the caller assumes the configured value.
    """
    usable = [runs for runs in histories if len(runs) >= MIN_RUNS]
    learned: dict[str, windows.RunNoise] = {}
    for metric, statistic in STATISTIC.items():  # the latency metrics of single mode
        parts = [part for runs in usable for part in _history_parts(runs, METRICS[metric], statistic)]
        weight = sum(d for d, _, _ in parts)
        if weight <= 0:
            continue
        variance = max(sum(d * excess for d, excess, _ in parts) / weight, 0.0)
        shown = {id(runs): runs for _, _, runs in parts}.values()  # the histories with a usable endpoint
        df = min(sum(len(runs) - 1.0 for runs in shown), stats.POOLED_DF)
        learned[metric] = windows.RunNoise(variance, df, sum(len(runs) for runs in shown), len(shown))
    return learned


def _history_parts(
    runs: Sequence[RunResult], field: str, statistic: float | str
) -> list[tuple[float, float, Sequence[RunResult]]]:
    """(degrees of freedom, s² − mean within-run variance, runs) for each endpoint of one history."""
    names = set.intersection(*({e.name for e in run.endpoints} for run in runs))
    parts = []
    for name in sorted(names):
        logs, within = [], []
        for run in runs:
            endpoint = next(e for e in run.endpoints if e.name == name)
            value = getattr(endpoint.stats, field)
            variance = _within(run, name, statistic)
            if value is not None and value > 0 and variance is not None:
                logs.append(math.log(value))
                within.append(variance)
        if len(logs) >= MIN_RUNS:
            parts.append((len(logs) - 1.0, float(np.var(logs, ddof=1)) - float(np.mean(within)), runs))
    return parts


def _within(run: RunResult, name: str, statistic: float | str) -> float | None:
    """The within-run variance of one endpoint's log statistic in ``run`` (None: too few windows)."""
    endpoint = next(e for e in run.endpoints if e.name == name)
    measured = [w.latency for w in endpoint.windows if is_measured(w.start, run.meta.measured_from)]
    if not measured:
        return None
    matrix, _, offset = windows.window_matrices(measured, [])
    values = windows.key_values(offset, matrix.bins.shape[1])
    series = windows.log_batch_series(matrix, statistic, values)
    return windows.long_run_variance(series)[0] if len(series) >= windows.MIN_BATCHES else None
