"""Baseline vs current: per endpoint (and the aggregate) × metric, an estimate, its uncertainty and a verdict.

Pure: results and settings in, a ``ComparisonReport`` out; resampling is seeded from the settings.
The mode follows the baseline: ``duet`` when the run measured the base deployment too (paired
windows of the same run), else ``history`` with ≥ 3 earlier runs, ``single`` with 1–2, ``none``
without. Every p-value of the report is adjusted together (Benjamini-Hochberg), then each test
gets its verdict by the rule in docs/STATISTICS.md.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from ci_perf import sketches
from ci_perf.analysis import changepoints, history, rates, rule, stats
from ci_perf.analysis import windows as window_tests
from ci_perf.analysis.capacity import capacity_test
from ci_perf.config import Comparison
from ci_perf.models import Frozen
from ci_perf.results import AGGREGATE, ArmResult, EndpointResult, EndpointWindow, RunResult, Stats, is_measured

# metric → the Stats field compared (labels and units in results.MEASURES)
METRICS: dict[str, str] = {
    "p50": "p50_ms",
    "p95": "p95_ms",
    "p99": "p99_ms",
    "mean": "winsorised_mean_ms",  # judged: robust to a few stalls (docs/STATISTICS.md, "Robust mean")
    "raw_mean": "mean_ms",  # shown, not judged
    "error_rate": "error_rate_percent",
    "rps": "rps",
    "capacity": "capacity_rps",  # the aggregate of a breakpoint run only; a drop is the regression
}
_STATS_METRICS = {metric: field for metric, field in METRICS.items() if field in Stats.model_fields}
# each judged latency metric → its statistic over a window's requests (a quantile, or the winsorised mean)
STATISTIC: dict[str, float | str] = {"p50": 0.5, "p95": 0.95, "p99": 0.99, "mean": stats.WINSORISED_MEAN}

Verdict = Literal["regression", "improvement", "unchanged", "inconclusive", "no-baseline", "not-judged"]
Mode = Literal["duet", "history", "single", "none"]

MODE_NOTES: dict[str, str] = {
    "duet": (
        "duet: the base deployment measured in the same run, by a twin of each user that runs the same code "
        "in lockstep; "
        "paired windows cancel the noise the two share"
    ),
    "history": "history: this run against the spread of {n} earlier runs (Student-t prediction interval)",
    "shared": (
        "; each endpoint judged on its own change, net of this run's shift shared by all endpoints "
        "(p95 {shift:+.1f} %, judged on the aggregate), its variance pooled across endpoints"
    ),
    "single": (
        "single baseline: this run's windows against {n} earlier run(s); windows cannot show run-to-run "
        "noise, so {noise}; record 3 or more baseline runs for verdicts that measure it on this scenario"
    ),
    "noise_learned": "p95 {percent:.1f} % was learned from {runs} runs of {histories} stored histor{ies}",
    "noise_assumed": (
        "{percent:g} % is assumed (comparison.run_noise_percent: no stored history of 3 or more runs to learn it from)"
    ),
    "none": "no baseline yet",
}
THROUGHPUT_NOTE = "not judged: with a fixed number of users, throughput follows latency"
RAW_MEAN_NOTE = "one stalled request moves it; the winsorised mean is judged"
_SHOWN = {"rps": THROUGHPUT_NOTE, "raw_mean": RAW_MEAN_NOTE}  # metrics shown with a note, never judged


class MetricComparison(Frozen):
    """One test. Latency metrics: ratios (current / baseline). Error rate: percentage points."""

    metric: str
    baseline: float | None
    current: float | None
    delta_percent: float | None
    baseline_runs: int
    verdict: Verdict = "not-judged"
    scale: Literal["ratio", "points"] = "ratio"
    effect: float | None = None  # ratio − 1 in %, or the difference in points
    ci_low: float | None = None  # same scale as effect
    ci_high: float | None = None
    p_value: float | None = None
    p_adjusted: float | None = None
    mde: float | None = None  # same scale as effect
    se: float | None = None  # the test's standard error on its pivot's scale (log ratio, or points)
    df: float | None = None  # its degrees of freedom; None: a normal pivot
    note: str = ""


class EndpointComparison(Frozen):
    endpoint: str
    metrics: dict[str, MetricComparison]
    p95_history: list[float]  # oldest first, baseline runs only
    change_points: list[int] = []  # indices into p95_history where a new p95 level starts (analysis.changepoints)


class BaselineRun(Frozen):
    """What the report shows of one history entry (for the trend chart)."""

    label: str
    p95_ms: float | None
    rps: float


class ComparisonReport(Frozen):
    mode: Mode
    mode_note: str
    change_point_note: str = ""  # which tests were judged on the runs since a change point on main
    baseline_runs: int
    matched_on: Literal["scenario", "load"]
    endpoints: list[EndpointComparison]
    history: list[BaselineRun]

    def for_endpoint(self, name: str) -> EndpointComparison | None:
        return next((e for e in self.endpoints if e.endpoint == name), None)

    def with_verdict(self, verdict: Verdict) -> list[tuple[str, MetricComparison]]:
        return [(e.endpoint, m) for e in self.endpoints for m in e.metrics.values() if m.verdict == verdict]


def delta_percent(baseline: float | None, current: float | None) -> float | None:
    if baseline is None or current is None or baseline == 0:
        return None
    return 100.0 * (current - baseline) / baseline


@dataclass
class _Test:
    """A test waiting for the report-wide p-value adjustment."""

    endpoint: str
    metric: str
    base: MetricComparison
    estimate: stats.Estimate | None
    note: str = ""


def compare_runs(
    current: RunResult,
    baseline: Sequence[RunResult],
    *,
    settings: Comparison,
    matched_on: Literal["scenario", "load"] = "scenario",
    run_noise: Mapping[str, window_tests.RunNoise] | None = None,
) -> ComparisonReport:
    """Compare ``current`` with ``baseline`` runs (oldest first), or with its own base arm (duet).

    ``run_noise``: single mode's run-to-run noise per latency metric, learned from the store
    (``analysis.noise``); a metric without it assumes ``settings.run_noise_percent``."""
    run_noise = run_noise or {}
    duet = current.base
    mode: Mode = "duet" if duet else "history" if len(baseline) >= 3 else "single" if baseline else "none"
    if duet:
        baseline = []
    rng = np.random.default_rng(settings.seed)
    names = [e.name for e in current.endpoints] + [AGGREGATE]
    tests: list[_Test] = []
    histories: dict[str, list[float]] = {}
    nets = _net_histories(current, baseline, names) if mode == "history" else {}
    befores = {name: _baseline_stats(current, baseline, name) for name in names}
    cuts = _change_points(befores, nets, baseline, settings) if mode == "history" else changepoints.Cuts(nets=nets)
    for name in names:
        before = befores[name]
        histories[name] = [s.p95_ms for s in before if s.p95_ms is not None] if not duet else []
        tests += _endpoint_tests(
            current, baseline, name, before, mode=mode, settings=settings, rng=rng, cuts=cuts, run_noise=run_noise
        )
    adjusted = _adjusted(tests)
    reasons = current.meta.unreliable_reasons
    results: dict[str, dict[str, MetricComparison]] = {name: {} for name in names}
    for test in tests:
        results[test.endpoint][test.metric] = rule.decide(
            test.base,
            test.estimate,
            note=test.note,
            adjusted=adjusted.get(id(test)),
            settings=settings,
            unreliable=reasons,
            sampling_limited=mode == "duet",
            family=max(len(adjusted), 1),
        )
    capacity = capacity_test(current, baseline)  # breakpoint runs: the break step as an ordinal
    if capacity is not None:
        results[AGGREGATE][capacity.metric] = MetricComparison(**capacity.model_dump())
    return ComparisonReport(
        mode=mode,
        mode_note=_mode_note(mode, len(baseline), settings, nets, run_noise),
        change_point_note=cuts.note(),
        baseline_runs=1 if duet else len(baseline),
        matched_on=matched_on,
        endpoints=[_endpoint(n, results[n], histories[n], cuts) for n in names],
        history=[
            BaselineRun(label=_label(run), p95_ms=run.aggregate.p95_ms, rps=run.aggregate.rps) for run in baseline
        ],
    )


def _baseline_stats(current: RunResult, baseline: Sequence[RunResult], name: str) -> list[Stats]:
    """The endpoint's stats in each baseline run, or in the run's own base arm (duet)."""
    runs = [current.base] if current.base else baseline
    return [s for s in (stats_of(run, name) for run in runs) if s is not None]


def _endpoint_tests(
    current: RunResult,
    baseline: Sequence[RunResult],
    name: str,
    before: list[Stats],
    *,
    mode: Mode,
    settings: Comparison,
    rng: np.random.Generator,
    cuts: changepoints.Cuts,
    run_noise: Mapping[str, window_tests.RunNoise],
) -> list[_Test]:
    """One test per metric of one endpoint (or the aggregate), before the report-wide adjustment."""
    now = stats_of(current, name)
    measured_from = current.meta.measured_from
    # windows are tested in single-baseline and duet modes; history mode judges run-level values (but for
    # the error rate, whose over-dispersion the current run's windows show too)
    windows: tuple[list[EndpointWindow], list[EndpointWindow]] = ([], [])
    if mode == "history":
        windows = (_windows(current.endpoints, measured_from, name), [])
    elif mode == "single":
        windows = (
            _windows(current.endpoints, measured_from, name),
            [w for run in baseline for w in _windows(run.endpoints, run.meta.measured_from, name)],
        )
    elif current.base:
        windows = _paired(
            _windows(current.endpoints, measured_from, name), _windows(current.base.endpoints, measured_from, name)
        )
    tests = []
    for metric, field in _STATS_METRICS.items():
        kept = cuts.since(name, metric, before)  # the runs since the test's last change point on main
        values = [v for v in (getattr(s, field) for s in kept) if v is not None]
        base_value = statistics.median(values) if values else None
        now_value = getattr(now, field) if now is not None else None
        shown = MetricComparison(
            metric=metric,
            baseline=base_value,
            current=now_value,
            delta_percent=delta_percent(base_value, now_value),
            baseline_runs=len(values),
            scale="points" if metric == "error_rate" else "ratio",
        )
        if metric in _SHOWN:
            tests.append(_Test(name, metric, shown.model_copy(update={"note": _SHOWN[metric]}), None, "skip"))
        elif not before or now is None or now.requests == 0:
            tests.append(_Test(name, metric, shown, None, "no-baseline"))
        elif sparse := rule.sparse_tail(metric, [now, *before]):  # a p99 from a few hundred requests
            tests.append(_Test(name, metric, shown.model_copy(update={"note": sparse}), None, "skip"))
        else:
            net = cuts.nets.get((name, metric))
            estimate = _estimate(
                metric, mode, now, kept, windows, settings=settings, rng=rng, net=net, noise=run_noise.get(metric)
            )
            tests.append(_Test(name, metric, shown, estimate))
    return tests


def _mode_note(
    mode: Mode,
    runs: int,
    settings: Comparison,
    nets: Mapping[tuple[str, str], history.NetHistory],
    run_noise: Mapping[str, window_tests.RunNoise],
) -> str:
    learned = run_noise.get("p95")
    noise = (
        MODE_NOTES["noise_learned"].format(
            percent=100 * math.expm1(math.sqrt(learned.variance)),
            runs=learned.runs,
            histories=learned.histories,
            ies="y" if learned.histories == 1 else "ies",
        )
        if learned
        else MODE_NOTES["noise_assumed"].format(percent=settings.run_noise_percent)
    )
    note = MODE_NOTES[mode].format(n=runs, noise=noise)
    shift = history.shared_shift_percent({name: net for (name, metric), net in nets.items() if metric == "p95"})
    return note + MODE_NOTES["shared"].format(shift=shift) if shift is not None else note


def _endpoint(
    name: str, metrics: dict[str, MetricComparison], p95_history: list[float], cuts: changepoints.Cuts
) -> EndpointComparison:
    """One row of the report, its p95 trend marked where main's p95 changed level."""
    return EndpointComparison(
        endpoint=name, metrics=metrics, p95_history=p95_history, change_points=cuts.marks.get(name, [])
    )


def _change_points(
    befores: Mapping[str, list[Stats]],
    nets: Mapping[tuple[str, str], history.NetHistory],
    baseline: Sequence[RunResult],
    settings: Comparison,
) -> changepoints.Cuts:
    """History mode: each latency test judged against the runs since its last change point on main."""
    labels = [_label(run) for run in baseline]
    fields = {metric: METRICS[metric] for metric in STATISTIC}
    return changepoints.history_cuts(befores, nets, labels=labels, fields=fields, settings=settings)


def _net_histories(
    current: RunResult, baseline: Sequence[RunResult], names: Sequence[str]
) -> dict[tuple[str, str], history.NetHistory]:
    """History mode: each latency metric's endpoint values net of each run's shared offset (``analysis.history``)."""
    nets: dict[tuple[str, str], history.NetHistory] = {}
    endpoints = [name for name in names if name != AGGREGATE]
    for metric in STATISTIC:
        field = METRICS[metric]
        values: dict[str, tuple[list[float | None], float | None]] = {}
        for name in endpoints:
            now = stats_of(current, name)
            before = [stats_of(run, name) for run in baseline]
            values[name] = ([getattr(s, field) if s else None for s in before], getattr(now, field) if now else None)
        nets |= {(name, metric): net for name, net in history.net_of_shared_offset(values).items()}
    return nets


def _adjusted(tests: Sequence[_Test]) -> dict[int, tuple[float, float]]:
    """(increase, decrease) adjusted p-values per test, by ``id``.

    Regressions and improvements are two families, each adjusted over every test of the report.
    """
    judged = [(t, t.estimate) for t in tests if t.estimate is not None]
    worse = stats.benjamini_hochberg([e.p_up for _, e in judged])
    better = stats.benjamini_hochberg([e.p_down for _, e in judged])
    return {id(t): (w, b) for (t, _), w, b in zip(judged, worse, better, strict=True)}


def stats_of(run: RunResult | ArmResult, name: str) -> Stats | None:
    """One endpoint's stats in ``run`` or a duet base arm (``AGGREGATE``: its aggregate); None where not measured."""
    if name == AGGREGATE:
        return run.aggregate
    return next((e.stats for e in run.endpoints if e.name == name), None)


def _measured(windows: Sequence[EndpointWindow], measured_from: float) -> list[EndpointWindow]:
    """The windows the totals cover: those after the warm-up."""
    return [w for w in windows if is_measured(w.start, measured_from)]


def _paired(
    current: list[EndpointWindow], base: list[EndpointWindow]
) -> tuple[list[EndpointWindow], list[EndpointWindow]]:
    """The windows both arms have, in the same order: row i of each is the same time span."""
    starts = sorted({w.start for w in current} & {w.start for w in base})
    by_current, by_base = {w.start: w for w in current}, {w.start: w for w in base}
    return [by_current[t] for t in starts], [by_base[t] for t in starts]


def _windows(endpoints: Sequence[EndpointResult], measured_from: float, name: str) -> list[EndpointWindow]:
    if name != AGGREGATE:
        endpoint = next((e for e in endpoints if e.name == name), None)
        return _measured(endpoint.windows, measured_from) if endpoint else []
    by_start: dict[float, list[EndpointWindow]] = {}
    for endpoint in endpoints:
        for window in _measured(endpoint.windows, measured_from):
            by_start.setdefault(window.start, []).append(window)
    return [
        EndpointWindow(
            start=start,
            requests=sum(w.requests for w in parts),
            failures=sum(w.failures for w in parts),
            latency=sketches.merge(w.latency for w in parts),
        )
        for start, parts in sorted(by_start.items())
    ]


def _estimate(
    metric: str,
    mode: Mode,
    now: Stats,
    before: Sequence[Stats],
    windows: tuple[list[EndpointWindow], list[EndpointWindow]],
    *,
    settings: Comparison,
    rng: np.random.Generator,
    net: history.NetHistory | None = None,
    noise: window_tests.RunNoise | None = None,
) -> stats.Estimate | None:
    current_windows, base_windows = windows
    alpha, power = settings.q, settings.power
    if metric == "error_rate":  # the baseline's runs (history) or windows, and this run's windows
        units = before if mode == "history" else base_windows
        return rates.rate_test(
            [rates.Counts(u.failures, u.requests) for u in units],
            [rates.Counts(w.failures, w.requests) for w in current_windows],
            totals=rates.Counts(now.failures, now.requests),
            alpha=alpha,
            power=power,
        )
    field = METRICS[metric]
    if mode == "history" and net is not None:  # net of the run's shared offset, variance pooled
        return stats.history_test(net.history, net.current, alpha=alpha, power=power, prior=net.prior, logs=True)
    if mode == "history":
        values = [v for v in (getattr(s, field) for s in before) if v is not None]
        current_value = getattr(now, field)
        return None if current_value is None else stats.history_test(values, current_value, alpha=alpha, power=power)
    if not base_windows or not current_windows:
        return None
    base_matrix, current_matrix, offset = window_tests.window_matrices(
        [w.latency for w in base_windows], [w.latency for w in current_windows]
    )
    key_values = window_tests.key_values(offset, base_matrix.bins.shape[1])
    pair = window_tests.WindowPair(base_matrix, current_matrix, key_values, STATISTIC[metric])
    resampling = window_tests.Resampling(alpha, power, settings.bootstrap, rng)
    if mode == "duet":
        return window_tests.paired_test(pair, resampling)
    noise = noise or window_tests.RunNoise(math.log1p(settings.run_noise_percent / 100) ** 2, math.inf)
    run_variance = noise.variance * (1 + 1 / len(before))  # this run's offset and the baseline's mean
    return window_tests.windows_test(pair, resampling, run_variance=run_variance, run_df=noise.df)


def _label(run: RunResult) -> str:
    if run.meta.git_sha:
        return run.meta.git_sha[:7]
    return time.strftime("%H:%M:%S", time.gmtime(run.meta.ended_at))
