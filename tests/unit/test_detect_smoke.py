"""A small, seeded run of the simulated detection benchmark (benchmarks/bench_detect.py).

Deterministic: the same seeds give the same verdicts, so this is a check of behaviour, not timing.
The full benchmark (`make bench-detect`) reports the rates with their uncertainty.
"""

from __future__ import annotations

import pytest

from benchmarks.bench_detect import Model, Trial, run_trial


@pytest.mark.parametrize("mode", ["history", "single"])
def test_aa_reports_rarely_alarm_and_intervals_cover_no_change(mode: str) -> None:
    outcomes = [run_trial(Trial(mode, 0.0, Model(phi=0.5), seed=9_000 + i)) for i in range(20)]
    # seed 9005 draws one request 480x the median: its mean moves 20 % (docs/STATISTICS.md, limits)
    assert sum(alarm for alarm, _, _, _ in outcomes) <= 1
    assert sum(covered for _, _, covered, _ in outcomes) >= 17  # ~95 % intervals around no effect


def test_a_quarter_slower_endpoint_is_caught_by_history_mode() -> None:
    outcomes = [run_trial(Trial("history", 0.25, Model(phi=0.5), seed=7_000 + i)) for i in range(10)]
    assert sum(hit for _, hit, _, _ in outcomes) >= 6
    assert sum(alarm for alarm, _, _, _ in outcomes) <= 1
