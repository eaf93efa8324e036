"""The "Server side" of a report: each server-side metric with its limit, query, baseline and verdict, and
the server's own request count next to the load generator's. Pure.

Baselines (docs/STATISTICS.md's history test, on one run-level value per run):

* **history** (≥ 3 baseline runs with a value): ``stats.history_test`` on the log scale, the p-values
  adjusted together (Benjamini-Hochberg); a regression needs adjusted p < ``q`` and an estimated change
  beyond ``min_effect_percent``, as for endpoints. Such a regression gates like any other (``fail_on``).
* **single** (1–2 runs): the change is shown, the verdict is ``inconclusive`` (no run-to-run spread).
* **duet**: the base deployment's value from the same run (``ServerMetric.base_value``); one value per arm
  has no spread either, so the change is shown and not judged.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from typing import Literal

from ci_perf.analysis import stats
from ci_perf.analysis.budget import SERVER_LABELS, SERVER_SOURCE, BudgetCheck, BudgetReport
from ci_perf.analysis.compare import Verdict, delta_percent
from ci_perf.config import Comparison, ServerMetricsSettings
from ci_perf.models import Frozen
from ci_perf.results import RunResult, ServerMetric

# the server's count may differ from the load generator's by 25 %: Prometheus extrapolates a counter's increase
# to the window's edges from a few scrapes, and a busy service answers a scrape late (short runs: tens of %)
REQUEST_MISMATCH = 0.25


class ServerRow(Frozen):
    name: str  # the budget rule (database.query_p95_ms) or the custom metric's name
    label: str
    unit: str
    value: float | None
    reason: str | None  # why there is no value
    limit: float | None
    upper_bound: bool
    status: Literal["pass", "fail", "not measured", "none"]  # "none": no limit (shown only)
    query: str
    series: list[float]
    baseline: float | None = None
    baseline_runs: int = 0
    delta_percent: float | None = None
    verdict: Verdict = "no-baseline"
    note: str = ""


class RequestRow(Frozen):
    endpoint: str
    sent: int  # the load generator's requests (measured window)
    served: float | None  # the server's own count (None: it has no such series)

    @property
    def mismatch(self) -> bool:
        """Whether the counts differ by more than ``REQUEST_MISMATCH``: the load did not reach the service as sent."""
        return self.served is not None and abs(self.served - self.sent) > REQUEST_MISMATCH * max(self.sent, 1)


class ServerReport(Frozen):
    rows: list[ServerRow]
    requests: list[RequestRow]
    mode: Literal["duet", "history", "single", "none"]

    @property
    def regressions(self) -> list[ServerRow]:
        return [row for row in self.rows if row.verdict == "regression"]


def server_report(
    result: RunResult,
    baseline: Sequence[RunResult],
    *,
    budget: BudgetReport,
    settings: Comparison,
    server: ServerMetricsSettings | None,
) -> ServerReport | None:
    """The section, or None when the run has no server-side metrics."""
    if not result.server:
        return None
    checks = {(c.endpoint, c.rule): c for c in budget.checks if c.source == SERVER_SOURCE}
    limits = {f"{u.section}.{u.rule}": u.limit for u in budget.unmeasured}
    duet = result.base is not None
    mode: Literal["duet", "history", "single", "none"] = (
        "duet" if duet else "history" if len(baseline) >= 3 else "single" if baseline else "none"
    )
    rows = [_row(metric, checks, limits, server) for metric in result.server]
    rows = _judged(rows, result.server, baseline, mode=mode, settings=settings)
    served = result.server_requests
    requests = [RequestRow(endpoint=e.name, sent=e.stats.requests, served=served.get(e.name)) for e in result.endpoints]
    return ServerReport(rows=rows, requests=requests if served else [], mode=mode)


def _row(
    metric: ServerMetric,
    checks: dict[tuple[str, str], BudgetCheck],
    limits: dict[str, float],
    server: ServerMetricsSettings | None,
) -> ServerRow:
    section, _, rule = metric.name.rpartition(".")
    check = checks.get((section or "custom", rule))
    custom = next((c for c in (server.custom if server else []) if c.name == metric.name), None)
    limit = check.limit if check else limits.get(metric.name, limits.get(f"custom.{metric.name}"))
    status: Literal["pass", "fail", "not measured", "none"] = "none"
    if check and check.status != "no-data":
        status = check.status
    elif metric.value is None:
        status = "not measured"
    return ServerRow(
        name=metric.name,
        label=SERVER_LABELS.get(metric.name, rule),
        unit=check.unit if check else (custom.unit if custom else metric.unit),
        value=metric.value,
        reason=metric.reason,
        limit=limit,
        upper_bound=custom.higher_is_worse if custom else True,
        status=status,
        query=metric.query,
        series=[point.value for point in metric.series],
    )


def _judged(
    rows: list[ServerRow],
    metrics: Sequence[ServerMetric],
    baseline: Sequence[RunResult],
    *,
    mode: str,
    settings: Comparison,
) -> list[ServerRow]:
    if mode == "duet":
        return [_duet(row, metric) for row, metric in zip(rows, metrics, strict=True)]
    if mode == "none":
        return rows
    histories = [_history(row.name, baseline) for row in rows]
    estimates = [
        stats.history_test(history, row.value, alpha=settings.q, power=settings.power)
        if mode == "history" and row.value is not None
        else None
        for row, history in zip(rows, histories, strict=True)
    ]
    p_values = [(e.p_up if row.upper_bound else e.p_down) for row, e in zip(rows, estimates, strict=True) if e]
    adjusted = iter(stats.benjamini_hochberg(p_values))
    judged = []
    for row, history, estimate in zip(rows, histories, estimates, strict=True):
        p = next(adjusted) if estimate else None
        judged.append(_verdict(row, history, estimate, p, settings=settings))
    return judged


def _history(name: str, baseline: Sequence[RunResult]) -> list[float]:
    return [m.value for run in baseline for m in run.server if m.name == name and m.value is not None]


def _verdict(
    row: ServerRow, history: list[float], estimate: stats.Estimate | None, p: float | None, *, settings: Comparison
) -> ServerRow:
    if not history:
        return row.model_copy(update={"verdict": "no-baseline"})
    median = statistics.median(history)
    update: dict[str, object] = {
        "baseline": median,
        "baseline_runs": len(history),
        "delta_percent": delta_percent(median, row.value),
    }
    if row.value is None:
        return row.model_copy(update=update | {"verdict": "not-judged", "note": "not measured in this run"})
    if estimate is None or p is None:
        note = "fewer than 3 baseline runs with a positive value: judged by the budget only"
        return row.model_copy(update=update | {"verdict": "inconclusive", "note": note})
    bound = math.log1p(settings.min_effect_percent / 100)
    worse = estimate.effect > bound if row.upper_bound else estimate.effect < -bound  # the rule of analysis.rule
    better = estimate.effect < -bound if row.upper_bound else estimate.effect > bound
    significant = p < settings.q
    verdict: Verdict = (
        "regression" if significant and worse else "improvement" if significant and better else "unchanged"
    )
    return row.model_copy(update=update | {"verdict": verdict})


def _duet(row: ServerRow, metric: ServerMetric) -> ServerRow:
    if metric.base_value is None:
        note = metric.base_reason or "no base value (set server_metrics.baseline_prometheus or baseline_matchers)"
        return row.model_copy(update={"verdict": "not-judged", "note": note})
    return row.model_copy(
        update={
            "baseline": metric.base_value,
            "baseline_runs": 1,
            "delta_percent": delta_percent(metric.base_value, row.value),
            "verdict": "not-judged",
            "note": "base deployment, same run: one value per arm, shown and not judged",
        }
    )
