"""Duet mode: the base deployment measured in the same run.

Synthetic runs check the statistics and the result's shape; the live runs (real Locust, two services
on loopback: twins, lockstep, validation and logins on both arms) are in tests/live/test_duet_live.py.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ci_perf import sketches
from ci_perf.analysis import windows
from ci_perf.analysis.compare import compare_runs
from ci_perf.analysis.summarize import summarize_run
from ci_perf.cli import main
from ci_perf.config import Comparison, Config, LoadSettings, with_comparison
from ci_perf.results import CollectedEndpointWindow, CollectedRun, CpuSample, RunResult
from tests.conftest import write

LOAD = LoadSettings(users=10, duration=30, warmup=0)
SETTINGS = Comparison()


def duet_run(
    *,
    slow: dict[str, float] | None = None,
    windows: int = 30,
    per_window: int = 60,
    shared_noise: float = 0.10,
    seed: int = 0,
    base_requests: float = 1.0,
) -> RunResult:
    """Two arms drawn from one lognormal per endpoint; each window's noise is shared by both arms
    (what duet pairing cancels); ``slow`` multiplies the head's latencies of some endpoints."""
    rng = np.random.default_rng(seed)
    parts = []
    for name, median in {"GET /a": 10.0, "GET /b": 30.0}.items():
        for index in range(windows):
            shared = float(np.exp(rng.normal(0, shared_noise)))
            start = 1_000.0 + index
            for arm, factor in (("head", (slow or {}).get(name, 1.0)), ("base", 1.0)):
                count = per_window if arm == "head" else round(per_window * base_requests)
                values = median * shared * factor * np.exp(rng.normal(0, 0.25, count))
                parts.append(
                    CollectedEndpointWindow(
                        arm=arm,  # type: ignore[arg-type]
                        endpoint=name,
                        start=start,
                        requests=count,
                        failures=0,
                        latency=sketches.of_values(values.tolist()),
                        first_start=start,
                        last_end=start + 1.0,
                    )
                )
    collected = CollectedRun(
        locust_version="2.47.0",
        window_s=1.0,
        windows=parts,
        cpu=[CpuSample(process="locust", at=1_000.0 + i, percent=20.0) for i in range(windows)],
    )
    return summarize_run(collected, load=LOAD, target="http://head", tool_version="t", baseline_target="http://base")


def _verdicts(run: RunResult) -> dict[tuple[str, str], str]:
    report = compare_runs(run, [], settings=SETTINGS)
    return {(e.endpoint, metric): m.verdict for e in report.endpoints for metric, m in e.metrics.items()}


def test_a_duet_result_holds_both_arms_and_the_base_url() -> None:
    run = duet_run()
    assert run.base is not None
    assert run.base.target == "http://base"
    assert run.meta.baseline_target == "http://base"
    assert [e.name for e in run.base.endpoints] == [e.name for e in run.endpoints]
    assert run.base.aggregate.requests == run.aggregate.requests
    assert run.meta.reliable


def test_a_duet_run_is_another_scenario_than_a_plain_run_of_the_same_load() -> None:
    plain = summarize_run(
        CollectedRun(
            locust_version="x",
            window_s=1.0,
            windows=[w for w in _collected_windows(duet_run()) if w.arm == "head"],
        ),
        load=LOAD,
        target="http://head",
        tool_version="t",
    )
    assert plain.meta.scenario_key != duet_run().meta.scenario_key


def _collected_windows(run: RunResult) -> list[CollectedEndpointWindow]:
    assert run.base is not None
    return [
        CollectedEndpointWindow(
            arm=arm,  # type: ignore[arg-type]
            endpoint=e.name,
            start=w.start,
            requests=w.requests,
            failures=w.failures,
            latency=w.latency,
            first_start=w.start,
            last_end=w.start + 1,
        )
        for arm, endpoints in (("head", run.endpoints), ("base", run.base.endpoints))
        for e in endpoints
        for w in e.windows
    ]


def test_arms_loaded_unequally_make_the_run_unreliable() -> None:
    run = duet_run(base_requests=0.8)
    assert not run.meta.reliable
    assert "not loaded alike" in run.meta.unreliable_reasons[0]


def test_duet_flags_the_slowed_endpoint_and_nothing_else() -> None:
    verdicts = _verdicts(duet_run(slow={"GET /b": 1.10}, seed=1))
    report = compare_runs(duet_run(slow={"GET /b": 1.10}, seed=1), [], settings=SETTINGS)
    assert report.mode == "duet"
    assert verdicts["GET /b", "p50"] == "regression"
    assert verdicts["GET /b", "p95"] == "regression"
    assert not [k for k, v in verdicts.items() if v == "regression" and k[0] == "GET /a"]


def test_shared_noise_that_moves_both_arms_is_not_a_regression() -> None:
    for seed in range(10):
        verdicts = _verdicts(duet_run(seed=100 + seed, shared_noise=0.3))
        assert "regression" not in verdicts.values(), seed


def test_the_paired_test_drops_a_short_last_batch_and_needs_four_batches() -> None:
    run = duet_run(windows=3)
    verdicts = _verdicts(run)
    # the latency tests need batches; the error rate is counts (none failed: within 5 failures, unchanged)
    assert all(v in {"inconclusive", "not-judged"} for (_, metric), v in verdicts.items() if metric != "error_rate")
    assert {v for (_, metric), v in verdicts.items() if metric == "error_rate"} == {"unchanged"}


def test_paired_intervals_cover_the_true_ratio() -> None:
    covered = trials = 0
    for seed in range(40):
        report = compare_runs(duet_run(slow={"GET /a": 1.2}, seed=seed, shared_noise=0.2), [], settings=SETTINGS)
        metric = report.for_endpoint("GET /a")
        assert metric is not None
        p50 = metric.metrics["p50"]
        assert p50.ci_low is not None
        assert p50.ci_high is not None
        trials += 1
        # the sketches' 1 % accuracy is part of any interval's honesty: allow one bucket
        covered += p50.ci_low - 2.1 <= 20.0 <= p50.ci_high + 2.1
    assert covered / trials >= 0.9


def test_paired_test_p_values_are_uniform_enough_under_no_change() -> None:
    rng = np.random.default_rng(5)
    small = 0
    for _ in range(200):
        rows = 30
        shared = np.exp(rng.normal(0, 0.2, rows))
        arms = [[sketches.of_values((20 * s * np.exp(rng.normal(0, 0.3, 50))).tolist()) for s in shared] for _ in "ab"]
        base, current, offset = windows.window_matrices(arms[0], arms[1])
        pair = windows.WindowPair(base, current, windows.key_values(offset, base.bins.shape[1]), 0.95)
        estimate = windows.paired_test(pair, windows.Resampling(0.01, 0.8, 200, rng))
        assert estimate is not None
        small += estimate.p_up < 0.05
    assert small / 200 <= 0.09  # nominal 5 %


def test_baseline_target_must_be_an_http_url(tmp_path: Path) -> None:
    config = Config(endpoints=["GET /"])  # type: ignore[list-item]
    with pytest.raises(ValueError, match="not an http"):
        with_comparison(config, baseline_target="staging.example.com")
    path = write(tmp_path / "c.yml", "endpoints: [GET /]\ncomparison: {baseline_target: ftp://x}\n")
    assert main(["validate", str(path)]) == 2
    assert main(["run", "--config", str(path), "--baseline-target", "nope", "--out", str(tmp_path / "o")]) == 2


def test_an_undetectable_duet_comparison_says_how_many_more_requests_would_do() -> None:
    report = compare_runs(duet_run(per_window=8, windows=12), [], settings=SETTINGS)
    notes = [m.note for e in report.endpoints for m in e.metrics.values() if m.verdict == "inconclusive"]
    assert any("× the requests (users × duration) would" in note for note in notes)
