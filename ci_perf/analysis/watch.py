"""``ci-perf watch``, the pure part: the change points in the baseline branch's recorded runs.

For each scenario, endpoint (and the aggregate) and latency metric, the series of the stored runs
(oldest first) is searched with ``analysis.changepoints``; each change point is listed with the
commit range it lies in (the last run before it .. the first run at the new level), its direction
and size. A change point is only as precise as the runs: the commit that caused it is in that range.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from ci_perf.analysis import changepoints
from ci_perf.analysis.compare import METRICS, STATISTIC, stats_of
from ci_perf.config import Comparison
from ci_perf.models import Frozen
from ci_perf.results import AGGREGATE, RunResult


class WatchedChange(Frozen):
    """One change point of one metric's series on the baseline branch."""

    scenario: str  # the scenario key
    endpoint: str
    metric: str
    before_sha: str | None  # the last run at the old level
    after_sha: str | None  # the first run at the new level
    after_ended_at: float
    before_ms: float  # the level of the segment before (geometric mean)
    after_ms: float
    change_percent: float
    p_value: float
    direction: Literal["regression", "improvement"]
    runs_since: int  # runs at the new level up to the newest (the first one included)


class WatchReport(Frozen):
    branch: str
    scenarios: int
    runs: int  # runs read, all scenarios
    changes: list[WatchedChange]

    def recent_regressions(self, within: int) -> list[WatchedChange]:
        """Regressions whose first run is among the newest ``within`` runs of their series."""
        return [c for c in self.changes if c.direction == "regression" and c.runs_since <= within]


def watch_runs(histories: Sequence[Sequence[RunResult]], *, branch: str, settings: Comparison) -> WatchReport:
    """The change points of every scenario's runs (each oldest first)."""
    changes = [change for runs in histories for change in _scenario_changes(runs, settings)]
    changes.sort(key=lambda c: (-c.after_ended_at, c.scenario, c.endpoint, c.metric))
    return WatchReport(
        branch=branch, scenarios=len(histories), runs=sum(len(runs) for runs in histories), changes=changes
    )


def _scenario_changes(runs: Sequence[RunResult], settings: Comparison) -> list[WatchedChange]:
    names = [*sorted({e.name for run in runs for e in run.endpoints}), AGGREGATE]
    found = []
    for name in names:
        measured = [(run, stats) for run in runs if (stats := stats_of(run, name)) is not None]
        for metric in STATISTIC:  # the judged latency metrics
            series = [(run, value) for run, stats in measured if (value := getattr(stats, METRICS[metric])) is not None]
            logs = changepoints.latency_logs([value for _, value in series])
            points = changepoints.detect(
                logs or [], max_p=settings.change_point_max_p, min_percent=settings.change_point_min_percent
            )
            for point in points:
                before, after = series[point.index - 1][0], series[point.index][0]
                found.append(
                    WatchedChange(
                        scenario=after.meta.scenario_key,
                        endpoint=name,
                        metric=metric,
                        before_sha=before.meta.git_sha,
                        after_sha=after.meta.git_sha,
                        after_ended_at=after.meta.ended_at,
                        before_ms=point.before,
                        after_ms=point.after,
                        change_percent=point.change_percent,
                        p_value=point.p_value,
                        direction="regression" if point.change_percent > 0 else "improvement",
                        runs_since=len(series) - point.index,
                    )
                )
    return found
