"""History mode judges each test against the runs since its last change point on main (issue 13, item 6)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ci_perf.analysis.compare import compare_runs
from ci_perf.analysis.judge import judge
from ci_perf.config import Comparison, Gate
from ci_perf.report import SPARK_MARK, escape_markdown, render_markdown, render_terminal
from ci_perf.results import AGGREGATE, History, RunResult
from ci_perf.simulate import DETECTION_SLOWED, SCENARIOS, NoiseModel, Trial, detection_baseline, detection_run


def _step_history(seed: int, *, runs: int = 20) -> tuple[list[RunResult], RunResult]:
    trial = Trial(mode="history", effect=0.0, model=SCENARIOS["step on main"], seed=seed, history=runs)
    rng = np.random.default_rng(seed)
    baseline = detection_baseline(rng, trial)
    return baseline, detection_run(rng, trial.model, slow=1.0, start=10_000.0)


def _p95_mde(current: RunResult, baseline: list[RunResult], settings: Comparison) -> float:
    metric = compare_runs(current, baseline, settings=settings).for_endpoint(DETECTION_SLOWED).metrics["p95"]  # type: ignore[union-attr]
    assert metric.mde is not None
    return metric.mde


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_after_a_step_on_main_the_mde_is_close_to_that_of_a_history_without_one(seed: int) -> None:
    baseline, current = _step_history(seed)
    flat = Trial(mode="history", effect=0.0, model=NoiseModel(), seed=seed, history=20)
    rng = np.random.default_rng(seed)
    flat_baseline = detection_baseline(rng, flat)
    flat_current = detection_run(rng, flat.model, slow=1.0, start=10_000.0)
    settings = Comparison(seed=seed, bootstrap=200)
    no_step = _p95_mde(flat_current, flat_baseline, settings)
    after_step = _p95_mde(current, baseline, settings)
    mixed = _p95_mde(current, baseline, settings.model_copy(update={"change_points": False}))
    assert after_step < 1.35 * no_step
    assert mixed > 1.5 * after_step  # the two levels mixed inflate the spread


def test_the_report_says_where_a_history_was_cut_and_marks_the_trend() -> None:
    baseline, current = _step_history(1)
    report = compare_runs(current, baseline, settings=Comparison(seed=1, bootstrap=200))
    slowed = report.for_endpoint(DETECTION_SLOWED)
    assert slowed is not None
    assert slowed.change_points == [10]
    assert slowed.metrics["p95"].baseline_runs == 10
    assert f"{DETECTION_SLOWED} p95 on the 10 runs since {report.history[10].label}" in report.change_point_note
    unchanged = report.for_endpoint("GET /e0")
    assert unchanged is not None
    assert unchanged.change_points == []
    assert unchanged.metrics["p95"].baseline_runs == 20


def test_fewer_than_three_runs_since_a_change_point_give_no_verdict_and_say_why() -> None:
    trial = Trial(mode="history", effect=0.0, model=NoiseModel(), seed=4, history=12)
    rng = np.random.default_rng(4)
    baseline = detection_baseline(rng, trial)
    baseline += [detection_run(rng, trial.model, slow=1.5, start=5_000.0 + 100 * i, merged=True) for i in range(2)]
    current = detection_run(rng, trial.model, slow=3.0, start=10_000.0)
    report = compare_runs(current, baseline, settings=Comparison(seed=4, bootstrap=200))
    p95 = report.for_endpoint(DETECTION_SLOWED).metrics["p95"]  # type: ignore[union-attr]
    assert p95.verdict == "inconclusive"
    assert "not enough data" in p95.note
    assert f"{DETECTION_SLOWED} p95 on the 2 runs since" in report.change_point_note
    assert "3 needed, not judged)" in report.change_point_note
    aggregate = report.for_endpoint(AGGREGATE)
    assert aggregate is not None
    assert aggregate.metrics["p95"].verdict != "no-baseline"


def test_change_points_off_judges_the_whole_history() -> None:
    baseline, current = _step_history(2)
    report = compare_runs(current, baseline, settings=Comparison(seed=2, bootstrap=200, change_points=False))
    assert report.change_point_note == ""
    assert all(e.change_points == [] for e in report.endpoints)


def test_the_trend_marks_a_change_point_in_the_comment_and_the_terminal() -> None:
    baseline, current = _step_history(1)
    report = judge(Gate(), current, history=History(runs=baseline)).report
    rows = [line for line in render_markdown(report).splitlines() if line.startswith(f"| <code>{DETECTION_SLOWED}")]
    [trend] = [row.rstrip(" |").rsplit("| ", 1)[1] for row in rows if SPARK_MARK in row]
    assert trend.count(SPARK_MARK) == 1
    assert trend.index(SPARK_MARK) == 10  # before the first run of the new level
    [line] = [line for line in render_terminal(report).splitlines() if line.startswith(DETECTION_SLOWED)]
    assert SPARK_MARK in line


def test_a_step_shared_by_every_endpoint_cuts_the_aggregate_and_the_trend_says_from_which_run() -> None:
    rng = np.random.default_rng(7)
    model = NoiseModel()
    baseline = [
        detection_run(
            rng, model, slow=1.0, start=1_000.0 + 100 * i, shift=math.log(1.25) if i >= 12 else 0.0, merged=True
        )
        for i in range(20)
    ]
    current = detection_run(rng, model, slow=1.0, start=10_000.0, shift=math.log(1.25))
    report = judge(Gate(), current, history=History(runs=baseline)).report
    assert report.comparison is not None
    aggregate = report.comparison.for_endpoint(AGGREGATE)
    assert aggregate is not None
    assert aggregate.change_points == [12]
    p95 = aggregate.metrics["p95"]
    assert p95.effect is not None
    assert abs(p95.effect) < 10  # judged against the new level only (+25 % against the whole history)
    # net of the run's shared offset, the endpoints' own series have no step (at most a stray one)
    assert len([e for e in report.comparison.endpoints if e.endpoint != AGGREGATE and e.change_points]) <= 1
    label = report.comparison.history[12].label
    assert f"p95 change points on main: from {escape_markdown(label)}</summary>" in render_markdown(report)
