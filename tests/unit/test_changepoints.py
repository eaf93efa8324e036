"""Change points on main's history (issue 13, item 6): detection, and verdicts on the segment since the last one."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ci_perf.analysis import changepoints
from ci_perf.config import Comparison

MAX_P = Comparison().change_point_max_p


def test_a_clear_step_is_found_at_the_first_run_of_the_new_level() -> None:
    rng = np.random.default_rng(3)
    logs = [*rng.normal(0, 0.02, 10), *rng.normal(math.log(1.2), 0.02, 10)]
    [point] = changepoints.detect(logs, max_p=MAX_P)
    assert point.index == 10
    assert 15 < point.change_percent < 25
    assert point.after > point.before
    assert point.p_value < MAX_P


@pytest.mark.parametrize("seed", range(20))
def test_a_flat_noisy_series_has_no_change_point(seed: int) -> None:
    rng = np.random.default_rng(seed)
    assert changepoints.detect(list(rng.normal(0, 0.03, 20)), max_p=MAX_P) == []


def test_drift_becomes_steps_in_its_direction() -> None:
    rng = np.random.default_rng(5)
    logs = [0.02 * i + float(rng.normal(0, 0.01)) for i in range(20)]
    points = changepoints.detect(logs, max_p=MAX_P)
    assert points
    assert all(p.change_percent > 0 for p in points)


def test_a_step_smaller_than_the_minimum_is_not_a_change_point() -> None:
    rng = np.random.default_rng(3)
    logs = [*rng.normal(0, 0.005, 10), *rng.normal(math.log(1.04), 0.005, 10)]
    assert changepoints.detect(logs, max_p=MAX_P)
    assert changepoints.detect(logs, max_p=MAX_P, min_percent=8) == []


def test_a_series_with_a_missing_run_is_not_searched() -> None:
    assert changepoints.latency_logs([5.0, None, 6.0]) is None
    assert changepoints.latency_logs([1.0, math.e]) == [0.0, 1.0]
