"""Capacity as an ordinal (issue 13, item 8): the break step, and a drop confirmed by a re-run before it gates."""

from __future__ import annotations

import pytest

from ci_perf.analysis.capacity import below_floor, break_level, capacity_test
from ci_perf.analysis.judge import judge
from ci_perf.config import Comparison, Gate, PerformanceBudget
from ci_perf.results import AGGREGATE, Capacity, History, RunResult, StepResult
from tests.support.runs import two_endpoint_run

pytestmark = pytest.mark.unit

GATE = Gate(performance_budget=PerformanceBudget(default_error_rate_percent=None), comparison=Comparison())


def _breakpoint(held: int, *, index: int = 0, steps: int = 8) -> RunResult:
    """A breakpoint run that held ``held`` steps of 10 users each (100 rps per step) and broke at the next."""
    results = [
        StepResult(
            index=i,
            users=10 * (i + 1),
            start=1_000.0 + 30 * i,
            rps=100.0 * (i + 1),
            p95_ms=20.0,
            error_rate_percent=0.0,
            within_limits=i < held,
        )
        for i in range(min(held + 1, steps))
    ]
    capacity = Capacity(
        users=10 * held or None,
        rps=100.0 * held or None,
        broke_at_users=10 * (held + 1) if held < steps else None,
        reason="p95 over the limit",
        limits={"p95_latency_ms": 100.0},
        steps=results,
    )
    run = two_endpoint_run(1.0, start=10_000.0 + 100 * index)
    return run.model_copy(update={"capacity": capacity})


BASELINE = [_breakpoint(held, index=i) for i, held in enumerate([5, 5, 6, 5, 6])]


def test_the_break_level_counts_the_steps_held_before_the_first_beyond_the_limits() -> None:
    levels = [break_level(run.capacity) for run in map(_breakpoint, (5, 0, 8)) if run.capacity is not None]
    assert levels == [5, 0, 8]


@pytest.mark.parametrize(
    ("held", "verdict"),
    [
        pytest.param(5, "unchanged", id="at the baseline's median"),
        pytest.param(6, "unchanged", id="one step later: main has held there too"),
        pytest.param(4, "inconclusive", id="one step earlier than every baseline run: a candidate, not a verdict"),
        pytest.param(3, "regression", id="two steps earlier than the median and below every run"),
        pytest.param(8, "improvement", id="two steps later than every run"),
    ],
)
def test_capacity_is_judged_by_its_break_step(held: int, verdict: str) -> None:
    test = capacity_test(_breakpoint(held, index=9), BASELINE)
    assert test is not None
    assert test.verdict == verdict
    assert test.baseline == 500.0  # rps, the median of the baseline runs'


def test_one_step_earlier_with_fewer_than_three_baseline_runs_is_not_judged() -> None:
    test = capacity_test(_breakpoint(3, index=9), BASELINE[:2])
    assert test is not None
    assert test.verdict == "inconclusive"
    assert "3 or more baseline runs" in test.note
    assert not below_floor(_breakpoint(3, index=9), BASELINE[:2])


def test_a_run_that_is_not_a_breakpoint_run_has_no_capacity_row() -> None:
    assert capacity_test(two_endpoint_run(1.0), BASELINE) is None


def _capacity_verdict(first: RunResult, reruns: list[RunResult]) -> tuple[str, int]:
    judgement = judge(GATE, first, history=History(runs=BASELINE), reruns=reruns)
    comparison = judgement.report.comparison
    assert comparison is not None
    row = comparison.for_endpoint(AGGREGATE)
    assert row is not None
    return row.metrics["capacity"].verdict, judgement.exit_code


def test_a_one_step_drop_that_every_re_run_repeats_is_a_confirmed_regression() -> None:
    assert _capacity_verdict(_breakpoint(4, index=9), [_breakpoint(4, index=10), _breakpoint(3, index=11)]) == (
        "regression",
        1,
    )


def test_a_drop_a_re_run_does_not_repeat_does_not_gate() -> None:
    verdict, exit_code = _capacity_verdict(
        _breakpoint(3, index=9), [_breakpoint(5, index=10), _breakpoint(3, index=11)]
    )
    assert (verdict, exit_code) == ("inconclusive", 0)


def test_without_re_runs_only_a_drop_of_two_steps_gates() -> None:
    assert _capacity_verdict(_breakpoint(3, index=9), []) == ("regression", 1)
    assert _capacity_verdict(_breakpoint(4, index=9), []) == ("inconclusive", 0)
