"""A small, seeded run of the detection model that benchmarks/bench_detect.py runs at length (ci_perf.simulate).

Deterministic: the same seeds give the same verdicts, so this is a check of behaviour, not timing.
The full benchmark (`make bench-detect`) reports the rates with their uncertainty.
"""

from __future__ import annotations

import pytest

from ci_perf.simulate import NoiseModel, Trial, detection_trial


@pytest.mark.parametrize("mode", ["history", "single"])
def test_aa_reports_rarely_alarm_and_intervals_cover_no_change(mode: str) -> None:
    outcomes = [
        detection_trial(Trial(mode=mode, effect=0.0, model=NoiseModel(phi=0.5), seed=9_000 + i)) for i in range(20)
    ]
    # seed 9005 draws one request 480x the median: its mean moves 20 % (docs/STATISTICS.md, limits)
    assert sum(o.alarm for o in outcomes) <= 1
    assert sum(o.covered for o in outcomes) >= 17  # ~95 % intervals around no effect


def test_a_quarter_slower_endpoint_is_caught_by_history_mode() -> None:
    outcomes = [
        detection_trial(Trial(mode="history", effect=0.25, model=NoiseModel(phi=0.5), seed=7_000 + i))
        for i in range(10)
    ]
    assert sum(o.hit for o in outcomes) >= 6
    assert sum(o.alarm for o in outcomes) <= 1
