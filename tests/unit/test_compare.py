"""Verdicts: the decision rule on results with known effects."""

from __future__ import annotations

import math

import numpy as np

from ci_perf.analysis.compare import compare_runs
from ci_perf.analysis.judge import judge
from ci_perf.analysis.summarize import summarize_run
from ci_perf.config import Comparison, Config, Gate
from ci_perf.results import AGGREGATE, History, RunResult
from ci_perf.simulate import DETECTION_SLOWED, NoiseModel, detection_run
from tests.conftest import collected_run
from tests.support.runs import JUDGED_LOAD, noisy_history, two_endpoint_run

SETTINGS = Comparison()


def _verdicts(
    current: RunResult, history: list[RunResult], settings: Comparison = SETTINGS
) -> dict[tuple[str, str], str]:
    report = compare_runs(current, history, settings=settings)
    return {(e.endpoint, m.metric): m.verdict for e in report.endpoints for m in e.metrics.values()}


def test_history_mode_flags_a_large_slowdown_on_one_endpoint_only() -> None:
    verdicts = _verdicts(two_endpoint_run(1.0, slow=1.25, start=5_000.0), noisy_history(10, cv=0.01))
    assert verdicts[("GET /slow", "p95")] == "regression"
    assert verdicts[("GET /slow", "mean")] == "regression"
    assert verdicts[("GET /fast", "p95")] == "unchanged"
    assert "regression" not in {v for (e, _), v in verdicts.items() if e == "GET /fast"}


def test_a_quiet_history_and_no_change_gives_unchanged() -> None:
    verdicts = _verdicts(two_endpoint_run(1.0, start=5_000.0), noisy_history(10, cv=0.007))  # MDE ≈ 3.4 % < 5 %
    assert set(verdicts.values()) <= {"unchanged", "not-judged"}
    assert verdicts[("GET /fast", "rps")] == "not-judged"


def test_a_short_noisy_history_is_inconclusive_never_a_silent_pass() -> None:
    verdicts = _verdicts(two_endpoint_run(1.0, start=5_000.0), noisy_history(3, cv=0.05))
    assert verdicts[("GET /slow", "p95")] == "inconclusive"


def test_an_effect_below_the_minimum_is_never_a_regression() -> None:
    history = noisy_history(10, cv=0.001)
    verdicts = _verdicts(two_endpoint_run(1.0, slow=1.03, start=5_000.0), history)
    assert verdicts[("GET /slow", "p95")] == "unchanged"  # significant, but +3 % < 5 %


def test_an_unreliable_run_gives_no_regression_verdict() -> None:
    verdicts = _verdicts(two_endpoint_run(1.0, slow=1.5, start=5_000.0, cpu=99.0), noisy_history(10, cv=0.01))
    assert verdicts[("GET /slow", "p95")] == "inconclusive"


def test_without_baseline_every_metric_says_so() -> None:
    verdicts = _verdicts(two_endpoint_run(1.0), [])
    assert {v for (_, m), v in verdicts.items() if m not in {"rps", "raw_mean"}} == {"no-baseline"}


def test_single_baseline_mode_is_named_and_deterministic_for_a_seed() -> None:
    current, base = two_endpoint_run(1.0, slow=1.3, start=5_000.0), [two_endpoint_run(1.0)]
    first = compare_runs(current, base, settings=SETTINGS)
    assert first.mode == "single"
    assert "cannot show run-to-run noise" in first.mode_note
    assert compare_runs(current, base, settings=SETTINGS) == first


def test_the_gate_fails_on_a_regression_only_when_asked() -> None:
    history = noisy_history(10, cv=0.01)
    current = two_endpoint_run(1.0, slow=1.25, start=5_000.0)
    config = Config(endpoints=["GET /slow"])  # type: ignore[list-item]
    failing = judge(config.gate, current, history=History(runs=history)).report
    assert failing.status == "fail"
    assert failing.headline.startswith("failed: 7 regressions (GET /slow p50 +24.4 % [+21.1 %, +27.8 %]")
    budget_only = Gate(comparison=Comparison(fail_on=["budget"]))
    passing = judge(budget_only, current, history=History(runs=history)).report
    assert passing.status == "pass"
    assert passing.headline.startswith("passed: ")
    assert "; 7 regressions (not gating); " in passing.headline


def _detection_history(seed: int, runs: int = 10) -> tuple[np.random.Generator, list[RunResult]]:
    rng = np.random.default_rng(seed)
    model = NoiseModel()
    return rng, [detection_run(rng, model, slow=1.0, start=1_000.0 + 100 * i, merged=True) for i in range(runs)]


def test_a_shift_shared_by_every_endpoint_is_judged_on_the_aggregate_not_on_each_endpoint() -> None:
    rng, history = _detection_history(3)
    current = detection_run(rng, NoiseModel(), slow=1.0, start=10_000.0, shift=math.log(1.3))
    report = compare_runs(current, history, settings=SETTINGS)
    assert report.for_endpoint(AGGREGATE).metrics["p95"].verdict == "regression"  # type: ignore[union-attr]
    assert not [
        m for e in report.endpoints if e.endpoint != AGGREGATE for m in e.metrics.values() if m.verdict == "regression"
    ]
    assert "shared by all endpoints (p95 +" in report.mode_note


def test_one_slower_endpoint_is_judged_net_of_the_runs_shared_shift() -> None:
    rng, history = _detection_history(5)
    current = detection_run(rng, NoiseModel(), slow=1.25, start=10_000.0, shift=math.log(1.08))
    report = compare_runs(current, history, settings=SETTINGS)
    p95 = report.for_endpoint(DETECTION_SLOWED).metrics["p95"]  # type: ignore[union-attr]
    assert p95.verdict == "regression"
    assert p95.ci_low is not None
    assert p95.ci_high is not None
    assert p95.ci_low < 25 < p95.ci_high  # its own +25 %, not +35 % with the shared +8 %
    others = [e for e in report.endpoints if e.endpoint not in {DETECTION_SLOWED, AGGREGATE}]
    assert not [m for e in others for m in e.metrics.values() if m.verdict in {"regression", "improvement"}]


def test_unchanged_means_the_whole_interval_lies_within_the_minimum_effect() -> None:
    report = compare_runs(two_endpoint_run(1.0, start=5_000.0), noisy_history(10, cv=0.007), settings=SETTINGS)
    for endpoint in report.endpoints:
        for metric in endpoint.metrics.values():
            if metric.verdict == "unchanged" and metric.scale == "ratio":
                assert metric.ci_low is not None
                assert metric.ci_high is not None
                assert metric.ci_low > -5
                assert metric.ci_high < 5


def test_a_significant_change_whose_estimate_clears_the_minimum_is_a_regression_though_its_interval_reaches_below() -> (
    None
):
    """The magnitude applies to the estimate (Otava's rule), not to the interval's far bound (criterion's)."""
    report = compare_runs(
        two_endpoint_run(1.0, slow=1.10, start=5_000.0), noisy_history(10, cv=0.03), settings=SETTINGS
    )
    p95 = report.for_endpoint("GET /slow").metrics["p95"]  # type: ignore[union-attr]
    assert p95.ci_low is not None
    assert p95.effect is not None
    assert p95.ci_low < 5 < p95.effect  # the interval rule would have called it inconclusive
    assert p95.verdict == "regression"


def test_a_significant_change_whose_estimate_is_below_the_minimum_is_no_regression() -> None:
    report = compare_runs(
        two_endpoint_run(1.0, slow=1.04, start=5_000.0), noisy_history(10, cv=0.002), settings=SETTINGS
    )
    p95 = report.for_endpoint("GET /slow").metrics["p95"]  # type: ignore[union-attr]
    assert p95.p_adjusted is not None
    assert p95.p_adjusted < SETTINGS.q
    assert p95.verdict in {"unchanged", "inconclusive"}


def _quiet_run(slow: float, start: float) -> RunResult:
    """``GET /quiet``: 300 requests (30 per window), so 3 lie beyond its p99 and 15 beyond its p95."""
    latencies = [slow * v for v in (40.0, 44.0, 48.0, 52.0, 56.0, 60.0)] * 5
    collected = collected_run(endpoints={"GET /quiet": latencies}, start=start)
    return summarize_run(collected, load=JUDGED_LOAD, target="http://x", tool_version="t")


def test_a_quantile_with_too_few_requests_beyond_it_is_shown_but_not_judged() -> None:
    history = [_quiet_run(float(np.exp(0.01 * i)), start=1_000.0 + 100 * i) for i in range(-5, 5)]
    report = compare_runs(_quiet_run(1.5, start=5_000.0), history, settings=SETTINGS)
    metrics = report.for_endpoint("GET /quiet").metrics  # type: ignore[union-attr]
    p99 = metrics["p99"]
    assert p99.verdict == "not-judged"  # +50 %, but its p99 is the 3rd-slowest request
    assert p99.delta_percent is not None
    assert p99.delta_percent > 40  # shown
    assert "3 beyond the p99" in p99.note
    assert "1000 requests give 10" in p99.note
    assert metrics["p95"].verdict == "regression"  # 15 beyond its p95: judged
