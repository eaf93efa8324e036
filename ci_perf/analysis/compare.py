"""Baseline vs current: per endpoint and metric, the baseline median over history and the delta.

Pure. The baseline is the median of the same metric over the last N recorded
runs of the same scenario on the baseline branch. Each ``MetricComparison`` has
room for a statistical verdict (``verdict``, ``ci_low``, ``ci_high``,
``p_value``); until the verdict engine fills them it says ``not-judged``.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Sequence
from typing import Literal

from pydantic import BaseModel, ConfigDict

from ci_perf.results import AGGREGATE, RunResult, Stats

# metric → the Stats field compared (labels and units in results.MEASURES)
METRICS: dict[str, str] = {
    "p50": "p50_ms",
    "p95": "p95_ms",
    "p99": "p99_ms",
    "mean": "mean_ms",
    "error_rate": "error_rate_percent",
    "rps": "rps",
}

Verdict = Literal["regression", "improvement", "unchanged", "inconclusive", "no-baseline", "not-judged"]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True)


class MetricComparison(_Frozen):
    metric: str
    baseline: float | None
    current: float | None
    delta_percent: float | None
    baseline_runs: int
    verdict: Verdict = "not-judged"
    ci_low: float | None = None
    ci_high: float | None = None
    p_value: float | None = None


class EndpointComparison(_Frozen):
    endpoint: str
    metrics: dict[str, MetricComparison]
    p95_history: list[float]  # oldest first, baseline runs only


class BaselineRun(_Frozen):
    """What the report shows of one history entry (for the trend chart)."""

    label: str
    p95_ms: float | None
    rps: float


class ComparisonReport(_Frozen):
    baseline_runs: int
    matched_on: Literal["scenario", "load"]
    endpoints: list[EndpointComparison]
    history: list[BaselineRun]

    def for_endpoint(self, name: str) -> EndpointComparison | None:
        return next((e for e in self.endpoints if e.endpoint == name), None)


def delta_percent(baseline: float | None, current: float | None) -> float | None:
    if baseline is None or current is None or baseline == 0:
        return None
    return 100.0 * (current - baseline) / baseline


def _compare_stats(current: Stats | None, history: Sequence[Stats]) -> dict[str, MetricComparison]:
    out = {}
    for metric, field in METRICS.items():
        values = [v for v in (getattr(s, field) for s in history) if v is not None]
        baseline = statistics.median(values) if values else None
        now = getattr(current, field) if current is not None else None
        out[metric] = MetricComparison(
            metric=metric,
            baseline=baseline,
            current=now,
            delta_percent=delta_percent(baseline, now),
            baseline_runs=len(values),
            verdict="not-judged" if values else "no-baseline",
        )
    return out


def compare_runs(
    current: RunResult, baseline: Sequence[RunResult], *, matched_on: Literal["scenario", "load"]
) -> ComparisonReport:
    """Compare ``current`` with ``baseline`` runs (oldest first)."""
    endpoints = []
    for endpoint in current.endpoints:
        history = [e.stats for run in baseline for e in run.endpoints if e.name == endpoint.name]
        endpoints.append(
            EndpointComparison(
                endpoint=endpoint.name,
                metrics=_compare_stats(endpoint.stats, history),
                p95_history=[s.p95_ms for s in history if s.p95_ms is not None],
            )
        )
    endpoints.append(
        EndpointComparison(
            endpoint=AGGREGATE,
            metrics=_compare_stats(current.aggregate, [run.aggregate for run in baseline]),
            p95_history=[run.aggregate.p95_ms for run in baseline if run.aggregate.p95_ms is not None],
        )
    )
    return ComparisonReport(
        baseline_runs=len(baseline),
        matched_on=matched_on,
        endpoints=endpoints,
        history=[
            BaselineRun(label=_label(run), p95_ms=run.aggregate.p95_ms, rps=run.aggregate.rps) for run in baseline
        ],
    )


def _label(run: RunResult) -> str:
    if run.meta.git_sha:
        return run.meta.git_sha[:7]
    return time.strftime("%H:%M:%S", time.gmtime(run.meta.ended_at))
