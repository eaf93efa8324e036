from __future__ import annotations

import pytest

from ci_perf.analysis.summarize import scenario_keys, summarize_run
from ci_perf.config import LoadSettings
from tests.conftest import collected_run

LOAD = LoadSettings(users=10, duration=10, warmup=2)


def test_warmup_windows_are_kept_but_excluded_from_totals() -> None:
    collected = collected_run(endpoints={"GET /a": [10.0] * 50}, windows=10)
    result = summarize_run(collected, load=LOAD, target="http://127.0.0.1:1", tool_version="t")
    endpoint = result.endpoints[0]
    assert len(endpoint.windows) == 10
    assert endpoint.stats.requests == 8 * 50  # two 1-s warm-up windows left out
    assert result.meta.measured_s == pytest.approx(8.0)
    assert endpoint.stats.rps == pytest.approx(50.0)


def test_duration_comes_from_recorded_timestamps_not_the_config() -> None:
    collected = collected_run(endpoints={"GET /a": [10.0] * 5}, windows=7)
    result = summarize_run(collected, load=LOAD, target="http://x", tool_version="t")
    assert result.meta.duration_s == pytest.approx(7.0)


def test_aggregate_is_the_sum_of_the_endpoints() -> None:
    collected = collected_run(endpoints={"GET /a": [5.0] * 30, "POST /b": [50.0] * 10}, failures={"POST /b": 2})
    result = summarize_run(collected, load=LOAD, target="http://x", tool_version="t")
    assert result.aggregate.requests == sum(e.stats.requests for e in result.endpoints)
    assert result.aggregate.failures == sum(e.stats.failures for e in result.endpoints) == 16
    post = next(e for e in result.endpoints if e.name == "POST /b")
    assert post.stats.error_rate_percent == pytest.approx(20.0)
    assert post.errors[0].message == "HTTPError: 500 Server Error"
    assert result.aggregate.p95_ms == pytest.approx(50.0, rel=0.01)


def test_a_saturated_generator_marks_the_run_unreliable() -> None:
    collected = collected_run(endpoints={"GET /a": [5.0] * 10}, cpu_percent=97.0)
    result = summarize_run(collected, load=LOAD, target="http://x", tool_version="t")
    assert result.meta.generator.saturated
    assert not result.meta.reliable
    assert "raise load.processes" in result.meta.unreliable_reasons[0]


def test_a_quiet_generator_leaves_the_run_reliable() -> None:
    result = summarize_run(collected_run(endpoints={"GET /a": [5.0]}), load=LOAD, target="http://x", tool_version="t")
    assert result.meta.reliable
    assert result.meta.generator.cpu_median_percent == pytest.approx(20.0)


def test_scenario_key_depends_on_load_and_endpoints_but_not_their_order() -> None:
    key, load_key = scenario_keys(LOAD, ["GET /a", "GET /b"])
    assert scenario_keys(LOAD, ["GET /b", "GET /a"]) == (key, load_key)
    other_key, same_load = scenario_keys(LOAD, ["GET /a"])
    assert other_key != key
    assert same_load == load_key
    assert scenario_keys(LOAD.model_copy(update={"users": 11}), ["GET /a", "GET /b"])[1] != load_key
