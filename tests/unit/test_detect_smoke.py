"""A small, seeded run of the detection model that benchmarks/bench_detect.py runs at length (ci_perf.simulate).

Deterministic: the same seeds give the same verdicts, so this checks the direction of the results
with wide margins, never timing. The full benchmark (`make bench-detect`) reports the rates.
"""

from __future__ import annotations

import pytest

from ci_perf.simulate import SCENARIOS, NoiseModel, Trial, detection_trial


def _trials(effect: float, model: NoiseModel, *, mode: str = "history", count: int = 10, seed: int = 9_000) -> list:
    return [
        detection_trial(Trial(mode=mode, effect=effect, model=model, history=20, seed=seed + i)) for i in range(count)
    ]


@pytest.mark.parametrize("scenario", ["shared run effect", "bursty errors", "heavy tails"])
def test_aa_reports_rarely_gate_and_intervals_cover_no_change(scenario: str) -> None:
    outcomes = _trials(0.0, SCENARIOS[scenario])
    assert sum(o.gated for o in outcomes) <= 1
    assert sum(o.covered for o in outcomes) >= 7  # ~95 % intervals around no effect (P(≤ 6 of 10) < 0.2 %)
    assert not any(o.disagree for o in outcomes)  # p and interval from one pivot


def test_a_quarter_slower_endpoint_is_caught_and_its_mde_is_below_a_quarter() -> None:
    outcomes = _trials(0.25, SCENARIOS["shared run effect"], seed=7_000)
    assert sum(o.hit for o in outcomes) >= 8
    assert sum(o.gated for o in outcomes) <= 1
    assert all(o.mde is not None and 5 < o.mde < 25 for o in outcomes)


def test_the_shown_mde_is_the_rules_not_a_lone_t_tests() -> None:
    """A +5 % change is almost never a verdict (the interval must clear +5 %), and the MDE says so."""
    outcomes = _trials(0.05, SCENARIOS["shared run effect"], seed=5_000)
    assert sum(o.hit for o in outcomes) <= 2
    assert all(o.mde is not None and o.mde > 8 for o in outcomes)


def test_confirm_runs_re_run_only_candidates_and_keep_a_real_regression() -> None:
    model = SCENARIOS["shared run effect"]
    slowed = [
        detection_trial(Trial(mode="history", effect=0.25, model=model, history=20, seed=7_100 + i, confirm=True))
        for i in range(5)
    ]
    assert sum(o.hit for o in slowed) >= 4
    quiet = [
        detection_trial(Trial(mode="history", effect=0.0, model=model, history=20, seed=9_100 + i, confirm=True))
        for i in range(6)
    ]
    assert not any(o.gated for o in quiet)
    assert sum(o.runs > 1 for o in quiet) <= 3  # an A/A run is a candidate about a third of the time (benchmarks.md)
