from __future__ import annotations

import json

import pytest

from ci_perf import sketches
from ci_perf.analysis.summarize import (
    UNFINISHED_FLOOR_MS,
    UNFINISHED_MESSAGE,
    scenario_keys,
    summarize_run,
    top_errors,
    unfinished_after_ms,
)
from ci_perf.config import LoadSettings
from ci_perf.results import (
    OTHER_MESSAGES,
    CollectedEndpointWindow,
    CollectedRun,
    EndpointWindow,
    ErrorCount,
    TaskException,
    parse_result,
)
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


def _window(
    endpoint: str, start: float, latencies: list[float], *, in_flight: list[float] | None = None, **fields: object
) -> CollectedEndpointWindow:
    return CollectedEndpointWindow(
        endpoint=endpoint,
        start=start,
        requests=len(latencies),
        failures=0,
        latency=sketches.of_values(latencies),
        in_flight_ms=in_flight or [],
        first_start=start,
        last_end=start + 1.0,
        **fields,  # type: ignore[arg-type]
    )


def _collected(windows: list[CollectedEndpointWindow], **fields: object) -> CollectedRun:
    return CollectedRun(locust_version="2.47.0", window_s=1.0, windows=windows, **fields)  # type: ignore[arg-type]


NO_WARMUP = LoadSettings(users=4, duration=10, warmup=0)


def test_a_request_in_flight_longer_than_every_answer_is_an_unfinished_failure_with_its_wait_as_latency() -> None:
    collected = _collected(
        [_window("GET /a", 1_000.0 + i, [20.0, 30.0]) for i in range(9)]
        + [_window("GET /a", 1_009.0, [25.0], in_flight=[4_000.0, 12.0])]
    )
    result = summarize_run(collected, load=NO_WARMUP, target="http://x", tool_version="t")
    stats = result.endpoints[0].stats
    assert stats.requests == 9 * 2 + 1 + 2  # both requests in flight were sent
    assert (stats.unfinished, stats.failures) == (1, 1)  # the one cut off after 12 ms is no failure
    assert stats.max_ms == pytest.approx(4_000.0)  # a lower bound: never faster than it had waited
    assert result.endpoints[0].errors == [ErrorCount(message=UNFINISHED_MESSAGE, count=1)]
    assert result.aggregate.unfinished == 1


def test_a_hung_endpoint_without_a_single_answer_shows_its_waits_and_fails() -> None:
    collected = _collected(
        [_window("GET /fast", 1_000.0 + i, [5.0] * 10) for i in range(5)]
        + [_window("GET /hung", 1_004.0, [], in_flight=[4_900.0, 3_100.0, 300.0])]
    )
    result = summarize_run(collected, load=NO_WARMUP, target="http://x", tool_version="t")
    hung = next(e for e in result.endpoints if e.name == "GET /hung")
    assert (hung.stats.requests, hung.stats.unfinished, hung.stats.failures) == (3, 2, 2)
    assert hung.stats.p50_ms is not None
    assert hung.stats.p50_ms >= 3_000.0
    assert hung.stats.error_rate_percent > 50
    assert unfinished_after_ms([]) == UNFINISHED_FLOOR_MS  # nothing answered: a second's wait is enough


def test_throughput_is_the_requests_over_the_measured_window_not_first_to_last_response() -> None:
    # a sparse locustfile: one request a second for the first 3 s of a 10-s run, answered at once
    collected = _collected(
        [_window("GET /a", 1_000.0 + i, [10.0]) for i in range(3)], started_at=1_000.0, stopped_at=1_010.0
    )
    load = LoadSettings(users=1, duration=10, warmup=2)
    result = summarize_run(collected, load=load, target="http://x", tool_version="t")
    assert result.meta.measured_from == pytest.approx(1_002.0)
    assert result.meta.measured_s == pytest.approx(8.0)  # to the end of the run, not to the last response
    assert result.aggregate.requests == 1
    assert result.aggregate.rps == pytest.approx(1 / 8)
    assert result.endpoints[0].stats.rps == pytest.approx(1 / 8)
    assert result.meta.ended_at == pytest.approx(1_010.0)


def test_a_run_that_ended_within_its_warmup_is_measured_whole_and_unreliable() -> None:
    collected = _collected([_window("GET /a", 1_000.0, [10.0] * 4)], started_at=1_000.0, stopped_at=1_000.5)
    load = LoadSettings(users=1, duration=10, warmup=5)
    result = summarize_run(collected, load=load, target="http://x", tool_version="t")
    assert result.meta.measured_s > 0
    assert result.aggregate.requests == 4
    assert result.aggregate.rps == pytest.approx(4 / 0.5)
    assert not result.meta.reliable
    assert "within the 5 s warm-up" in result.meta.unreliable_reasons[0]


def test_requests_to_other_hosts_are_grouped_by_host_and_kept_out_of_the_aggregate() -> None:
    collected = _collected(
        [_window("GET /a", 1_000.0 + i, [10.0] * 3) for i in range(4)]
        + [_window("GET /", 1_000.0 + i, [80.0], host="example.com") for i in range(4)]
        + [_window("GET /lib.js", 1_001.0, [5.0, 6.0], host="cdn.test:8443")]
        + [_window("GET /", 1_001.0, [90.0], host="example.com", arm="base")]
    )
    result = summarize_run(collected, load=NO_WARMUP, target="http://x", tool_version="t")
    assert [e.name for e in result.endpoints] == ["GET /a"]
    assert result.aggregate.requests == 12
    assert [(e.host, e.name, e.stats.requests) for e in result.other_hosts] == [
        ("cdn.test:8443", "GET /lib.js", 2),
        ("example.com", "GET /", 4),
    ]
    assert result.endpoints[0].host is None


def test_exceptions_and_the_users_that_ran_reach_the_result() -> None:
    exception = TaskException(type="ValueError", message="bad total", count=3, where="locustfile.py:12")
    collected = _collected([_window("GET /a", 1_000.0, [10.0])], exceptions=[exception], peak_users=7)
    result = summarize_run(collected, load=NO_WARMUP, target="http://x", tool_version="t")
    assert result.exceptions == [exception]
    assert result.meta.peak_users == 7


def test_a_version_2_result_still_reads_with_the_new_fields_at_their_defaults() -> None:
    document = summarize_run(
        collected_run(endpoints={"GET /a": [5.0]}), load=LOAD, target="http://x", tool_version="t"
    ).model_dump(mode="json")
    document["schema_version"] = 2
    for stats in [document["aggregate"], *(e["stats"] for e in document["endpoints"])]:
        del stats["unfinished"]
    for endpoint in document["endpoints"]:
        del endpoint["host"]
        for window in endpoint["windows"]:
            del window["unfinished"]
    for key in ("other_hosts", "exceptions"):
        del document[key]
    del document["meta"]["peak_users"]
    result = parse_result(json.dumps(document), source="old.json")
    assert result.aggregate.unfinished == 0
    assert (result.other_hosts, result.exceptions, result.meta.peak_users) == ([], [], 0)


def test_the_collectors_catch_all_message_is_never_a_top_error_of_its_own() -> None:
    """It joins the report's one "other (N)" row: a failures table never shows two "other" rows."""
    errors = [
        ErrorCount(message=OTHER_MESSAGES, count=50),
        *(ErrorCount(message=f"E{i}", count=10 - i) for i in range(8)),
    ]
    window = EndpointWindow(start=0, requests=100, failures=86, latency=sketches.of_values([1.0]), errors=errors)
    top = top_errors([window])
    assert [e.message for e in top] == ["E0", "E1", "E2", "E3", "E4"]
