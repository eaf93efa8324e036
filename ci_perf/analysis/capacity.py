"""Capacity (breakpoint runs) compared as what it is: an ordinal, the step at which the service broke.

Pure. A breakpoint run's capacity is the last step within the limits, so it moves in whole steps: a
t-test on the rps of that step called one step earlier a near-certain regression. Here the run's
*level* (how many steps it held) is compared with the baseline runs' levels:

* below every baseline run (their floor) and two or more steps below their median: ``regression``;
* below the floor by one step's worth (one step below the median): ``inconclusive``, a candidate that
  a re-run confirms or clears (``analysis.confirm``: confirmed when every run broke below the floor);
* two or more steps above the median and above every baseline run: ``improvement``;
* otherwise ``unchanged``: main itself has broken there.

Under no change, with n baseline runs and R runs of the change, all R below all n happens with
probability R! · n! / (n + R)! (exchangeable runs, no ties; ties make it rarer): 1.8 % at n = 5 and
R = 3, 0.35 % at n = 10, 0.06 % at n = 20. Capacity is judged with 3 or more baseline runs.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from typing import Literal

from ci_perf.models import Frozen
from ci_perf.results import Capacity, RunResult

CAPACITY = "capacity"  # the metric's name in the comparison (the aggregate's row)
MIN_BASELINE_RUNS = 3


class CapacityTest(Frozen):
    """The capacity row of a comparison (the fields of ``compare.MetricComparison`` it sets)."""

    metric: str = CAPACITY
    baseline: float | None  # rps, the median of the baseline runs' (shown)
    current: float | None
    delta_percent: float | None
    baseline_runs: int
    verdict: Literal["regression", "improvement", "unchanged", "inconclusive", "no-baseline"]
    note: str = ""


def break_level(capacity: Capacity) -> int:
    """How many steps the run held before its first step beyond the limits (all of them if none was)."""
    level = 0
    for step in capacity.steps:
        if not step.within_limits:
            break
        level += 1
    return level


def _levels(baseline: Sequence[RunResult]) -> list[int]:
    return [break_level(run.capacity) for run in baseline if run.capacity is not None]


def below_floor(current: RunResult, baseline: Sequence[RunResult]) -> bool:
    """The run broke earlier than every one of 3 or more baseline runs: a candidate for confirmation."""
    levels = _levels(baseline)
    if current.capacity is None or len(levels) < MIN_BASELINE_RUNS:
        return False
    return break_level(current.capacity) < min(levels)


def capacity_test(current: RunResult, baseline: Sequence[RunResult]) -> CapacityTest | None:
    """This run's break step against the baseline runs'; ``None`` for a run that is not a breakpoint run."""
    if current.capacity is None:
        return None
    rps = [run.capacity.rps for run in baseline if run.capacity is not None and run.capacity.rps]
    base_rps = statistics.median(rps) if rps else None
    now_rps = current.capacity.rps
    levels = _levels(baseline)
    test = CapacityTest(
        baseline=base_rps,
        current=now_rps,
        delta_percent=100 * (now_rps - base_rps) / base_rps if base_rps and now_rps is not None else None,
        baseline_runs=len(levels),
        verdict="no-baseline",
    )
    if not levels:
        return test
    if len(levels) < MIN_BASELINE_RUNS:
        note = f"capacity is judged against {MIN_BASELINE_RUNS} or more baseline runs ({len(levels)} so far)"
        return test.model_copy(update={"verdict": "inconclusive", "note": note})
    level, median = break_level(current.capacity), statistics.median_low(levels)
    steps = f"held {level} step(s); the baseline runs held {min(levels)}-{max(levels)}, median {median}"
    if level < min(levels):
        verdict = "regression" if median - level >= 2 else "inconclusive"
        why = "broke earlier than every baseline run" + ("" if verdict == "regression" else ", by one step")
        return test.model_copy(update={"verdict": verdict, "note": f"{why}: {steps}"})
    if level > max(levels) and level - median >= 2:
        return test.model_copy(update={"verdict": "improvement", "note": steps})
    return test.model_copy(update={"verdict": "unchanged", "note": steps})
