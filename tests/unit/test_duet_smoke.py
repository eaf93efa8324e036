"""A small, seeded run of the duet model that benchmarks/bench_duet.py runs at length: behaviour, not timing."""

from __future__ import annotations

from ci_perf.config import Comparison
from ci_perf.results import RunResult
from ci_perf.simulate import DUET_SLOWED, Outcome, base_only, duet_run, head_only, verdict_of


def _no_change(current: RunResult, baseline: list[RunResult]) -> Outcome:
    return verdict_of(current, baseline, slowed=DUET_SLOWED, effect=0.0, settings=Comparison())


def test_simulated_aa_duet_reports_do_not_alarm_and_cover_no_change() -> None:
    outcomes = [_no_change(duet_run(effect=0.0, hog=True, seed=500 + i), []) for i in range(8)]
    assert not any(o.alarm for o in outcomes)
    assert sum(o.covered for o in outcomes) >= 7


def test_duet_cancels_noise_that_history_mode_has_to_carry() -> None:
    runs = [duet_run(effect=0.0, hog=True, seed=700 + i) for i in range(8)]
    duet = [_no_change(run, []).log_ratio for run in runs]
    history = [_no_change(head_only(run), [base_only(r) for r in runs if r is not run]).log_ratio for run in runs]
    spread = [sum(x * x for x in values if x is not None) for values in (duet, history)]
    assert spread[0] < spread[1] / 2  # the run-level offset cancels in duet mode only
