"""Confirm before blocking: a candidate regression is measured again before it may fail a merge.

Pure: the comparisons of the first run and of its re-runs (each against the same baseline) in, the
report's comparison with the candidates decided on the combined evidence, and a ``Confirmation``
for the report, out. docs/STATISTICS.md ("Confirm before blocking") states the rule and its
simulated error rates; in short:

* **candidate** (after the first run): a latency or error-rate test that is a regression, or in the
  grey zone — a result that would be a regression if ``confirm_runs`` more runs showed the same:
  its pooled pivot over all the runs, √R · d / se, clears the report's Benjamini-Hochberg threshold
  and its estimate lies beyond the minimum effect. A capacity drop below every baseline run
  (``analysis.capacity``) is a candidate too. The pipeline then re-runs the load.
* **confirmed**: every run moved the same way (worse); the re-runs alone, pooled, meet the rule on
  their own (one-sided p < ``comparison.q``, adjusted over the candidates, and an estimate beyond the
  minimum effect); and the inverse-variance pooled estimate of all R runs — each run's log effect d_i
  with its test's se_i and df, a t on the Welch-Satterthwaite df — is significant after the same
  report-wide adjustment and lies beyond the minimum effect (and ``min_abs_ms``), the verdict rule of ``analysis.rule``.
  A capacity drop is confirmed when every run broke below every baseline run.
* anything else is ``inconclusive``, showing each run's numbers. Budget checks are deterministic
  limits on the first run and are never re-run-confirmed.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from statistics import NormalDist
from typing import Literal

from ci_perf.analysis import stats
from ci_perf.analysis.capacity import CAPACITY, below_floor
from ci_perf.analysis.compare import ComparisonReport, EndpointComparison, MetricComparison, compare_runs
from ci_perf.analysis.windows import RunNoise
from ci_perf.config import Comparison
from ci_perf.models import Frozen
from ci_perf.results import AGGREGATE, RunResult

JUDGED = ("p50", "p95", "p99", "mean", "error_rate")  # the tests with a pivot; capacity is an ordinal
_NORMAL = NormalDist()
_Z95 = _NORMAL.inv_cdf(0.975)
_TINY_P = 1e-300


class RunEvidence(Frozen):
    """One run's numbers for a candidate: the effect, its interval and p (toward worse), its verdict."""

    label: str
    effect: float | None
    ci_low: float | None
    ci_high: float | None
    p_value: float | None
    verdict: str


class ConfirmedTest(Frozen):
    """A candidate regression and what the runs together say about it (same scale as its metric)."""

    endpoint: str
    metric: str
    scale: Literal["ratio", "points"]
    runs: list[RunEvidence]
    effect: float | None = None  # pooled over the runs
    ci_low: float | None = None
    ci_high: float | None = None
    p_value: float | None = None
    p_adjusted: float | None = None
    confirmed: bool
    why: str


class ConfirmRun(Frozen):
    """One load run of the confirmation: the first or a re-run, and where its result is."""

    label: str  # "run 1", "re-run 1", …
    result_path: str
    reliable: bool
    unreliable_reasons: list[str] = []
    order: str = ""  # duet: which arm of each pair started first


class Confirmation(Frozen):
    runs: list[ConfirmRun]
    tests: list[ConfirmedTest]

    @property
    def confirmed(self) -> list[ConfirmedTest]:
        return [t for t in self.tests if t.confirmed]


class _Pivot(Frozen):
    """A test's evidence on one run, on the log scale (points for error rates): d, its se and their df."""

    d: float
    se: float
    df: float = math.inf


def rerun_path(index: int) -> str:
    """Where re-run ``index`` (from 1) writes its result, relative to the out dir."""
    return f"confirm-{index}/result.json"


def duet_first(index: int) -> Literal["head", "base"]:
    """Duet: which arm of each pair starts first in re-run ``index`` — the base, then the head, alternating
    (the first run draws it per pair), so an order effect cannot confirm itself."""
    return "base" if index % 2 else "head"


def wants_reruns(
    first: ComparisonReport, current: RunResult, baseline: Sequence[RunResult], settings: Comparison
) -> bool:
    """Whether a first run (reliable, compared) has a candidate that ``settings.confirm_runs`` re-runs could settle."""
    if not current.meta.reliable:
        return False
    drop = below_floor(current, baseline)
    return bool(candidates(first, settings, extra_runs=settings.confirm_runs, capacity_drop=drop))


def confirm_reruns(
    first: ComparisonReport,
    current: RunResult,
    reruns: Sequence[RunResult],
    *,
    baseline: Sequence[RunResult],
    settings: Comparison,
    matched_on: Literal["scenario", "load"] = "scenario",
    run_noise: Mapping[str, RunNoise] | None = None,
) -> tuple[ComparisonReport, Confirmation]:
    """Compare each re-run with the same baseline (duet: its own base arm) and decide the candidates.

    ``run_noise``: single mode's learned run-to-run noise, as for the first run (``compare_runs``)."""
    others = [
        compare_runs(run, baseline, settings=settings, matched_on=matched_on, run_noise=run_noise) for run in reruns
    ]
    duet = current.base is not None
    runs = [
        ConfirmRun(
            label=label,
            result_path=path,
            reliable=run.meta.reliable,
            unreliable_reasons=run.meta.unreliable_reasons,
            order=order if duet else "",
        )
        for label, path, run, order in [
            ("run 1", "result.json", current, "a coin flip per pair"),
            *((f"re-run {i}", rerun_path(i), run, f"{duet_first(i)} first") for i, run in enumerate(reruns, start=1)),
        ]
    ]
    drops = [below_floor(run, baseline) for run in [current, *reruns]]
    return confirm(first, others, settings=settings, runs=runs, capacity_drops=drops)


def candidates(
    report: ComparisonReport, settings: Comparison, *, extra_runs: int, capacity_drop: bool = False
) -> list[tuple[str, str]]:
    """(endpoint, metric) of every candidate regression of a first run; none when nothing is to be re-run.

    ``capacity_drop``: the run broke below every baseline run (``capacity.below_floor``).
    """
    if extra_runs <= 0 or report.mode == "none":
        return []
    tests = [(e.endpoint, m) for e in report.endpoints for m in e.metrics.values() if m.metric in JUDGED]
    pivots = [_pivot(m) for _, m in tests]
    runs = extra_runs + 1
    # R runs like this one, pooled as ``_pooled`` pools them (history: the baseline's share of se² stays whole)
    shared = [1 / (m.baseline_runs + 1) if report.mode == "history" else 0.0 for _, m in tests]
    boosted = [
        _p_worse(p.d / (p.se * math.sqrt((1 - c) / runs + c)), _repeated_df(p.df, runs, c)) if p else 1.0
        for p, c in zip(pivots, shared, strict=True)
    ]
    found = []
    for (endpoint, metric), pivot, p in zip(tests, pivots, stats.benjamini_hochberg(boosted), strict=True):
        reachable = pivot is not None and p < settings.q and _clears(metric, pivot.d, settings)
        if metric.verdict == "regression" or reachable:
            found.append((endpoint, metric.metric))
    return found + ([(AGGREGATE, CAPACITY)] if capacity_drop else [])


def confirm(
    first: ComparisonReport,
    others: Sequence[ComparisonReport],
    *,
    settings: Comparison,
    runs: Sequence[ConfirmRun],
    capacity_drops: Sequence[bool] = (),
) -> tuple[ComparisonReport, Confirmation]:
    """Decide the first run's candidates on every run's evidence; the other tests keep the first run's verdicts.

    ``runs`` and ``capacity_drops`` (breakpoint runs: whether each run broke below every baseline run)
    are in the order of ``[first, *others]``.
    """
    reports = [first, *others]
    drops = list(capacity_drops) or [False] * len(reports)
    wanted = candidates(first, settings, extra_runs=len(others), capacity_drop=drops[0])
    pooled = _pooled_family(reports)
    adjusted = dict(zip(pooled, stats.benjamini_hochberg([p for _, p in pooled.values()]), strict=True))
    replicated = _replicated([key for key in wanted if key[1] != CAPACITY], others)
    unreliable = [r for r in runs if not r.reliable]
    decided: list[ConfirmedTest] = []
    for key in wanted:
        evidence = [_evidence(run.label, report, key) for run, report in zip(runs, reports, strict=True)]
        base = _metric(first, key)
        if base is None:
            continue
        test = ConfirmedTest(endpoint=key[0], metric=key[1], scale=base.scale, runs=evidence, confirmed=False, why="")
        if key[1] == CAPACITY:
            against = [run.label for run, drop in zip(runs, drops, strict=True) if not drop]
            decided.append(_verdict(test, against=against, unreliable=unreliable, failed=None))
        else:
            p = (pooled[key][0], pooled[key][1], adjusted[key], replicated.get(key, (1.0, -math.inf)))
            decided.append(_decision(test, base, p, settings, unreliable=unreliable))
    return _applied(first, decided, runs=len(reports)), Confirmation(runs=list(runs), tests=decided)


def _pivot(metric: MetricComparison) -> _Pivot | None:
    """d, se and df of one run's test: the effect and the test's own se and df (a duet interval can be a t
    on 3 df: an se read off its width as if normal would be 1.6× too wide); reports written before the
    se was kept: the se its 95 % interval implies (normal)."""
    if metric.effect is None:
        return None
    d = _to_log(metric.scale, metric.effect)
    if metric.se is not None:
        return _Pivot(d=d, se=metric.se, df=math.inf if metric.df is None else metric.df) if metric.se > 0 else None
    if metric.ci_low is None or metric.ci_high is None:
        return None
    low, high = _to_log(metric.scale, metric.ci_low), _to_log(metric.scale, metric.ci_high)
    se = (high - low) / (2 * _Z95)
    return _Pivot(d=d, se=se) if se > 0 else None


def _repeated_df(df: float, runs: int, shared: float) -> float:
    """Welch-Satterthwaite df of ``runs`` runs like one on ``df``, pooled, where a fraction ``shared`` of
    each run's se² is the baseline's and common to all (history mode): R·df with nothing shared, df with all."""
    own = 1 - shared
    return df * (own / runs + shared) ** 2 / (own**2 / runs**3 + shared**2)


def _to_log(scale: str, value: float) -> float:
    return value if scale == "points" else math.log1p(value / 100)


def _from_log(scale: str, value: float) -> float:
    return value if scale == "points" else 100 * math.expm1(value)


def _p_worse(t: float, df: float) -> float:
    return max(_TINY_P, stats.one_sided(t, df)[0])


def _clears(metric: MetricComparison, d: float, settings: Comparison) -> bool:
    """The estimate d lies beyond the smallest change worth a verdict (latency: and ``min_abs_ms``), the
    magnitude half of the verdict rule (``analysis.rule``)."""
    if metric.scale == "points":
        return d > settings.min_error_rate_points
    large = metric.baseline is None or metric.baseline * math.expm1(d) > settings.min_abs_ms
    return large and d > math.log1p(settings.min_effect_percent / 100)


def _metric(report: ComparisonReport, key: tuple[str, str]) -> MetricComparison | None:
    endpoint = report.for_endpoint(key[0])
    return endpoint.metrics.get(key[1]) if endpoint else None


def _pooled_family(reports: Sequence[ComparisonReport]) -> dict[tuple[str, str], tuple[_Pivot | None, float]]:
    """Every judged test of the report pooled over the runs: (pooled pivot, p toward worse), by (endpoint, metric).

    The whole family is pooled so that the adjustment is the one a single run's report gets.
    """
    family: dict[tuple[str, str], tuple[_Pivot | None, float]] = {}
    for endpoint in reports[0].endpoints:
        for metric in endpoint.metrics.values():
            if metric.metric not in JUDGED or metric.verdict == "not-judged":  # e.g. a p99 of too few requests
                continue
            key = (endpoint.endpoint, metric.metric)
            pooled = _pooled(reports, key)
            family[key] = (pooled, _p_worse(pooled.d / pooled.se, pooled.df) if pooled else 1.0)
    return family


def _pooled(reports: Sequence[ComparisonReport], key: tuple[str, str]) -> _Pivot | None:
    """The inverse-variance pooled pivot of one test over ``reports``; ``None`` unless every run has one.

    History mode judges every run against the same baseline runs, so the error of their mean, s²/n of
    each run's s² (1 + 1/n), is shared by all runs and does not shrink with more of them: the pooled
    variance keeps it whole (duet runs each have their own base arm).
    """
    found = [m for m in (_metric(r, key) for r in reports) if m is not None]
    pivots = [p for p in map(_pivot, found) if p is not None]
    if not pivots or len(pivots) < len(reports):
        return None
    history = reports[0].mode == "history"
    shared = sum(p.se**2 for p in pivots) / len(pivots) / (found[0].baseline_runs + 1) if history else 0.0
    weights = [1 / p.se**2 for p in pivots]
    total = sum(weights)
    d = sum(w * p.d for w, p in zip(weights, pivots, strict=True)) / total
    parts = [(w**2 * max(p.se**2 - shared, 0.0) / total**2, p.df) for w, p in zip(weights, pivots, strict=True)]
    parts.append((shared, min(p.df for p in pivots)))  # the baseline's share, on the baseline's df
    variance = sum(v for v, _ in parts)
    spread = sum(v**2 / df for v, df in parts if v > 0)  # Welch-Satterthwaite
    return _Pivot(d=d, se=math.sqrt(variance), df=variance**2 / spread if spread > 0 else math.inf)


def _replicated(
    keys: Sequence[tuple[str, str]], reruns: Sequence[ComparisonReport]
) -> dict[tuple[str, str], tuple[float, float]]:
    """Each candidate's evidence from the re-runs alone, pooled: p toward worse (BH-adjusted over the
    candidates) and the pooled effect (−∞ without one). The first run was chosen for looking worse, so it
    cannot vouch for itself: pooled with it, re-runs that merely lean the same way would confirm a fluke."""
    pivots = {key: _pooled(reruns, key) for key in keys}
    p = [_p_worse(pivot.d / pivot.se, pivot.df) if pivot else 1.0 for pivot in pivots.values()]
    effects = [pivot.d if pivot else -math.inf for pivot in pivots.values()]
    return {key: (q, d) for key, q, d in zip(pivots, stats.benjamini_hochberg(p), effects, strict=True)}


def _evidence(label: str, report: ComparisonReport, key: tuple[str, str]) -> RunEvidence:
    metric = _metric(report, key)
    if metric is None:
        return RunEvidence(label=label, effect=None, ci_low=None, ci_high=None, p_value=None, verdict="no data")
    p, effect = metric.p_value, metric.effect if metric.metric != CAPACITY else metric.delta_percent
    return RunEvidence(
        label=label,
        effect=effect,
        ci_low=metric.ci_low,
        ci_high=metric.ci_high,
        p_value=None if p is None or effect is None else (p if effect >= 0 else 1 - p),
        verdict=metric.verdict,
    )


def _decision(
    test: ConfirmedTest,
    base: MetricComparison,
    pooled: tuple[_Pivot | None, float, float, tuple[float, float]],
    settings: Comparison,
    *,
    unreliable: Sequence[ConfirmRun],
) -> ConfirmedTest:
    """The rule for a test with a pivot: worse in every run, replicated by the re-runs, pooled significance
    and size. ``pooled``: all runs' pivot, its p and adjusted p, and the re-runs' own adjusted p and effect."""
    pivot, p, p_adjusted, (p_replicated, d_replicated) = pooled
    against = [e.label for e in test.runs if e.effect is None or e.effect <= 0]
    if pivot is None:
        return _verdict(test, against=against, unreliable=unreliable, failed="a run has no interval for this test")
    scale = test.scale
    test = test.model_copy(
        update={
            "effect": _from_log(scale, pivot.d),
            "ci_low": _from_log(scale, pivot.d - stats.t_quantile(0.975, pivot.df) * pivot.se),
            "ci_high": _from_log(scale, pivot.d + stats.t_quantile(0.975, pivot.df) * pivot.se),
            "p_value": p,
            "p_adjusted": p_adjusted,
        }
    )
    failed = None
    if p_replicated >= settings.q or not _clears(base, d_replicated, settings):
        failed = (
            f"the re-runs alone do not show it (p {p_replicated:.2g}, adjusted, and an effect beyond the minimum "
            f"needed; q = {settings.q:g})"
        )
    elif p_adjusted >= settings.q:
        failed = f"the pooled p, adjusted, is {p_adjusted:.2g} (not below q = {settings.q:g})"
    elif not _clears(base, pivot.d, settings):
        failed = "the pooled effect is not beyond the minimum effect"
    return _verdict(test, against=against, unreliable=unreliable, failed=failed)


def _verdict(
    test: ConfirmedTest, *, against: Sequence[str], unreliable: Sequence[ConfirmRun], failed: str | None
) -> ConfirmedTest:
    """Confirmed, or why not: an unreliable run, a run that did not get worse, the pooled test."""
    if unreliable:
        why = "; ".join(f"{r.label} was unreliable ({'; '.join(r.unreliable_reasons)})" for r in unreliable)
    elif against:
        why = f"{', '.join(against)} did not get worse"
    elif failed:
        why = failed
    else:
        return test.model_copy(update={"confirmed": True, "why": f"confirmed: worse in all {len(test.runs)} runs"})
    return test.model_copy(update={"why": f"not confirmed: {why}"})


def _applied(first: ComparisonReport, decided: Sequence[ConfirmedTest], *, runs: int) -> ComparisonReport:
    """The first run's comparison with each candidate's verdict replaced by the confirmation's."""
    by_key = {(t.endpoint, t.metric): t for t in decided}

    def decide(endpoint: str, metric: MetricComparison) -> MetricComparison:
        test = by_key.get((endpoint, metric.metric))
        if test is None:
            return metric
        if not test.confirmed:
            return metric.model_copy(update={"verdict": "inconclusive", "note": test.why})
        update: dict[str, object] = {"verdict": "regression", "note": f"{test.why}; effect pooled over {runs} runs"}
        if test.effect is not None:  # capacity keeps its own numbers
            update |= {"effect": test.effect, "ci_low": test.ci_low, "ci_high": test.ci_high}
            update |= {"p_value": test.p_value, "p_adjusted": test.p_adjusted}
        return metric.model_copy(update=update)

    endpoints = [
        EndpointComparison(
            endpoint=e.endpoint,
            metrics={name: decide(e.endpoint, m) for name, m in e.metrics.items()},
            p95_history=e.p95_history,
        )
        for e in first.endpoints
    ]
    return first.model_copy(update={"endpoints": endpoints})
