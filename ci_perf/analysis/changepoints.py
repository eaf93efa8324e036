"""Change points on main's history (issue 13, item 6): level shifts and drift in a metric's baseline runs.

The detection is Apache Otava's (``otava.analysis.compute_change_points``, the algorithm of Fleming
et al., "Hunter", ICPE 2023): E-Divisive proposes splits of the series, and a split is kept while a
two-sided Student-t test between the segments either side of it gives p < ``change_point_max_p``
and the level moves by at least ``change_point_min_percent``. Latency is judged on the log scale (a
10 % step is the same at 5 ms as at 500 ms); drift becomes one or more steps. Deterministic: no
permutations, the same series always gives the same change points.

History mode (``history_cuts``) judges each test only against the runs since the last change point
of its own series: the endpoint's log values net of the run's shared offset where that model applies
(``analysis.history``), its raw log values otherwise and for the aggregate. docs/STATISTICS.md,
"Change points on main's history".

``otava.analysis`` imports ``scipy.stats`` (about a second): it is imported on first use.
"""

from __future__ import annotations

import functools
import importlib
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from types import ModuleType
from typing import TypeVar

import numpy as np

from ci_perf.analysis import history
from ci_perf.config import Comparison
from ci_perf.results import Stats

MIN_SEGMENT = 3  # runs since the last change point that a history test needs (stats.history_test)
_T = TypeVar("_T")


@dataclass(frozen=True)
class ChangePoint:
    """A level shift: ``index`` is the first run of the new level (0-based in the series, oldest first)."""

    index: int
    before: float  # the level of the segment before it (geometric mean for latency)
    after: float  # the level of the segment after it
    change_percent: float  # after / before − 1, in %
    p_value: float  # Otava's: two-sided Student-t between the two segments


@functools.cache
def _otava() -> ModuleType:
    return importlib.import_module("otava.analysis")


def detect(logs: Sequence[float], *, max_p: float, min_percent: float = 0.0) -> list[ChangePoint]:
    """The change points of a series of log values (oldest first); none with fewer than 4 values.

    Otava's minimum magnitude is relative to the segments' means, so the series goes in centred on 1:
    the ratio of two means of 1 + (log − mean) is within a few tenths of a percent of the log ratio.
    """
    if len(logs) < 4:
        return []
    values = np.asarray(logs, dtype=float)
    centred = [float(v) for v in 1.0 + (values - values.mean())]
    points, _ = _otava().compute_change_points(
        centred, window_len=max(50, len(centred)), max_pvalue=max_p, min_magnitude=math.log1p(min_percent / 100)
    )
    found = []
    bounds = [0, *(int(p.index) for p in points), len(values)]
    for k, point in enumerate(points):
        before = float(values[bounds[k] : bounds[k + 1]].mean())
        after = float(values[bounds[k + 1] : bounds[k + 2]].mean())
        found.append(
            ChangePoint(
                index=int(point.index),
                before=math.exp(before),
                after=math.exp(after),
                change_percent=100 * math.expm1(after - before),
                p_value=float(point.stats.pvalue),
            )
        )
    return found


def latency_logs(values: Sequence[float | None]) -> list[float] | None:
    """The log values of a latency series; None when a run lacks the value (the series is not aligned then)."""
    if any(v is None or v <= 0 for v in values):
        return None
    return [math.log(v) for v in values if v is not None]


# -- history mode: the segment since the last change point ---------------------------------------


@dataclass(frozen=True)
class Cut:
    """One test's history cut at its last change point."""

    start: int  # the first baseline run kept
    runs: int  # runs kept
    label: str  # that run's label (short sha)
    change: ChangePoint


@dataclass(frozen=True)
class Cuts:
    """Where each test's history starts, the net histories since then, and the p95 marks of the trend."""

    by_test: dict[tuple[str, str], Cut] = field(default_factory=dict)
    nets: dict[tuple[str, str], history.NetHistory] = field(default_factory=dict)
    marks: dict[str, list[int]] = field(default_factory=dict)  # endpoint → p95 change point indices

    def since(self, name: str, metric: str, runs: Sequence[_T]) -> list[_T]:
        """The baseline runs (or their stats) a test is judged against: those since its last change point."""
        cut = self.by_test.get((name, metric))
        return list(runs[cut.start :] if cut else runs)

    def note(self, limit: int = 6) -> str:
        """For the report: which tests were judged on a cut history (empty when none was)."""
        if not self.by_test:
            return ""
        parts = [
            f"{name} {metric} on the {cut.runs} runs since {cut.label} ({cut.change.change_percent:+.1f} %"
            + (f"; {MIN_SEGMENT} needed, not judged)" if cut.runs < MIN_SEGMENT else ")")
            for (name, metric), cut in sorted(self.by_test.items())
        ]
        more = f" and {len(parts) - limit} more" if len(parts) > limit else ""
        return ", ".join(parts[:limit]) + more


def history_cuts(
    before: Mapping[str, Sequence[Stats]],
    nets: Mapping[tuple[str, str], history.NetHistory],
    *,
    labels: Sequence[str],
    fields: Mapping[str, str],
    settings: Comparison,
) -> Cuts:
    """Each latency test's last change point and the nets cut there (history mode).

    ``before``: endpoint → its stats in each baseline run (oldest first); only an endpoint measured in
    every run (as many stats as ``labels``) is searched. ``fields``: latency metric → Stats field.
    A test with a net history is searched on it, the others on their raw log values.
    """
    if not settings.change_points:
        return Cuts(nets=dict(nets))
    by_test: dict[tuple[str, str], Cut] = {}
    marks: dict[str, list[int]] = {}
    for name, stats in before.items():
        if len(stats) != len(labels):
            continue
        for metric, stat_field in fields.items():
            net = nets.get((name, metric))
            logs = net.history if net else latency_logs([getattr(s, stat_field) for s in stats])
            points = detect(
                logs or [], max_p=settings.change_point_max_p, min_percent=settings.change_point_min_percent
            )
            if metric == "p95" and points:
                marks[name] = [p.index for p in points]
            if points:
                last = points[-1]
                by_test[(name, metric)] = Cut(last.index, len(labels) - last.index, labels[last.index], last)
    return Cuts(by_test, _cut_nets(nets, by_test), marks)


def _cut_nets(
    nets: Mapping[tuple[str, str], history.NetHistory], by_test: Mapping[tuple[str, str], Cut]
) -> dict[tuple[str, str], history.NetHistory]:
    """The net histories since each cut. A cut history's variance pools with the other endpoints' net
    values over the same last runs (the same degrees of freedom, ``history.priors``), among those
    whose own history reaches that far back."""
    cut_nets = dict(nets)
    for key, cut in by_test.items():
        net = nets.get(key)
        if net is None:
            continue
        kept = net.history[cut.start :]
        prior = None
        if len(kept) >= MIN_SEGMENT:
            _, metric = key
            others = [
                other.history[-len(kept) :]
                for other_key, other in nets.items()
                if other_key[1] == metric and other_key != key and _reaches(by_test.get(other_key), cut.start)
            ]
            variances = [float(np.var(h, ddof=1)) for h in [kept, *others]]
            prior = history.priors(variances, df=len(kept) - 1)[0]
        cut_nets[key] = replace(net, history=kept, prior=prior)
    return cut_nets


def _reaches(cut: Cut | None, start: int) -> bool:
    return cut is None or cut.start <= start
