"""The judged mean is the winsorised one; the raw mean is shown, never judged (issue 13, item 5)."""

from __future__ import annotations

import math

import numpy as np

from ci_perf.analysis.compare import compare_runs
from ci_perf.analysis.summarize import summarize_run
from ci_perf.config import Comparison
from ci_perf.results import RunResult
from tests.conftest import collected_run
from tests.support.runs import JUDGED_LOAD as LOAD


def test_the_judged_mean_is_winsorised_and_the_raw_mean_is_shown_not_judged() -> None:
    rng = np.random.default_rng(6)

    def run(start: float, *, stall: bool = False) -> RunResult:
        values = list(rng.lognormal(math.log(30.0), 0.3, 400))
        if stall:
            values[-1] = 30_000.0  # one request a thousand times the median
        return summarize_run(
            collected_run(endpoints={"GET /a": values}, start=start), load=LOAD, target="x", tool_version="t"
        )

    history = [run(1_000.0 + 100 * i) for i in range(10)]
    report = compare_runs(run(5_000.0, stall=True), history, settings=Comparison())
    metrics = report.endpoints[0].metrics
    assert metrics["raw_mean"].verdict == "not-judged"
    assert metrics["raw_mean"].delta_percent is not None
    assert metrics["raw_mean"].delta_percent > 100  # the raw mean more than doubles
    assert metrics["mean"].verdict not in {"regression", "improvement"}
    assert metrics["mean"].delta_percent is not None
    assert abs(metrics["mean"].delta_percent) < 5
