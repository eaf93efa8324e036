"""A small, seeded run of the simulated duet benchmark (benchmarks/bench_duet.py): behaviour, not timing."""

from __future__ import annotations

from benchmarks.bench_duet import base_only, head_only, judge, simulated_run


def test_simulated_aa_duet_reports_do_not_alarm_and_cover_no_change() -> None:
    outcomes = [judge(simulated_run(effect=0.0, hog=True, seed=500 + i), [], 0.0) for i in range(8)]
    assert not any(o.alarm for o in outcomes)
    assert sum(o.covered for o in outcomes) >= 7


def test_duet_cancels_noise_that_history_mode_has_to_carry() -> None:
    runs = [simulated_run(effect=0.0, hog=True, seed=700 + i) for i in range(8)]
    duet = [judge(run, [], 0.0).log_ratio for run in runs]
    history = [judge(head_only(run), [base_only(r) for r in runs if r is not run], 0.0).log_ratio for run in runs]
    spread = [sum(x * x for x in values if x is not None) for values in (duet, history)]
    assert spread[0] < spread[1] / 2  # the run-level offset cancels in duet mode only
