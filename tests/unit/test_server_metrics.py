"""Server-side budgets (issue 14) without a Prometheus: the config, the budget rules, the verdicts against
history and duet, the report's Server side section, result.json's schema 4. tests/live/test_server_metrics_live.py
runs the same against a real Prometheus."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ci_perf.analysis.budget import NOT_MEASURED, check_budget
from ci_perf.analysis.judge import judge
from ci_perf.analysis.summarize import summarize_run
from ci_perf.config import Gate, LoadSettings, PerformanceBudget, ServerMetricsSettings, parse_config
from ci_perf.config.server import le_pattern, unit_of
from ci_perf.errors import ConfigError
from ci_perf.report import render
from ci_perf.results import ArmResult, History, RunResult, ServerMetric, ServerPoint, parse_result
from ci_perf.servermetrics.evaluate import expanded_headers, fill
from tests.conftest import collected_run

PROMETHEUS = "http://127.0.0.1:9090"


def config_text(server_metrics: str, budget: str = "{database: {query_p95_ms: 50}}") -> str:
    return (
        "target: http://127.0.0.1:8000\nendpoints: [GET /api/products]\n"
        f"performance_budget: {budget}\nserver_metrics: {server_metrics}\n"
    )


def run_with(server: list[ServerMetric], *, requests: dict[str, float] | None = None) -> RunResult:
    collected = collected_run(endpoints={"GET /api/products": [10.0] * 100})
    result = summarize_run(collected, load=LoadSettings(duration=10, warmup=0), target="http://x", tool_version="t")
    return result.model_copy(update={"server": server, "server_requests": requests or {}})


def metric(name: str, value: float | None, *, reason: str | None = None, **more: object) -> ServerMetric:
    return ServerMetric.model_validate(
        {"name": name, "query": f"q({name})", "unit": "ms", "value": value, "reason": reason, **more}
    )


def gate(server_metrics: dict[str, object] | None, budget: dict[str, object]) -> Gate:
    return Gate.model_validate(
        {
            "performance_budget": budget,
            "server_metrics": None if server_metrics is None else {"prometheus": PROMETHEUS, **server_metrics},
        }
    )


# -- config --------------------------------------------------------------------------------------


def test_server_metrics_is_part_of_the_gate_with_defaults() -> None:
    config = parse_config(config_text(f"{{prometheus: {PROMETHEUS}}}"), source=Path("ci-perf.yml"))
    assert config.server_metrics is not None
    assert config.server_metrics is config.gate.server_metrics
    assert config.server_metrics.step == 5.0
    assert config.server_metrics.point_window == 10.0
    assert config.server_metrics.on_unmeasured == "warn"
    assert "histogram_quantile(0.95" in (config.server_metrics.query_for("database.query_p95_ms") or "")


@pytest.mark.parametrize(
    ("server_metrics", "budget", "expected"),
    [
        pytest.param(
            f"{{prometheus: {PROMETHEUS}, queries: {{db.p95: 'x'}}}}", "{}", "'db.p95' is not a budget rule", id="rule"
        ),
        pytest.param(
            f"{{prometheus: {PROMETHEUS}}}",
            "{database: {deadlocks: 0}}",
            "ci-perf.yml:4: server_metrics: performance_budget.database.deadlocks has no default query; give it one "
            "under server_metrics.queries",
            id="no-default-query",
        ),
        pytest.param(
            f"{{prometheus: {PROMETHEUS}, custom: [{{name: a, query: x, limit: 1}}, {{name: a, query: y, limit: 2}}]}}",
            "{}",
            "custom metric 'a' is named twice",
            id="custom-twice",
        ),
        pytest.param(f"{{prometheus: {PROMETHEUS}, on_unmeasured: ignore}}", "{}", "on_unmeasured", id="on-unmeasured"),
        pytest.param("{prometheus: localhost:9090}", "{}", "is not an http(s) URL", id="url"),
        pytest.param(f"{{prometheus: {PROMETHEUS}, step: soon}}", "{}", "is not a duration", id="step"),
        pytest.param(f"{{prometheus: {PROMETHEUS}, promql: x}}", "{}", "unknown key", id="unknown-key"),
        pytest.param(
            f"{{prometheus: {PROMETHEUS}, headers: {{Authorization: 'Bearer $1abc'}}}}",
            "{}",
            "does not start ${NAME}",
            id="header-dollar",
        ),
    ],
)
def test_a_bad_server_metrics_section_is_a_config_error_naming_the_field(
    server_metrics: str, budget: str, expected: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(config_text(server_metrics, budget), source=Path("ci-perf.yml"))
    assert expected in str(caught.value)
    assert "ci-perf.yml:" in str(caught.value)


def test_placeholders_are_filled_and_the_slow_query_bucket_matches_its_label_forms() -> None:
    budget = PerformanceBudget.model_validate({"database": {"slow_query_threshold_ms": 250}})
    query = "rate(x_bucket{le=~`{slow_query_le}`,{matchers}}[{window}])"
    assert fill(query, window_s=57.25, matchers='job="a"', budget=budget) == (
        r'rate(x_bucket{le=~`0\.250*`,job="a"}[57250ms])'
    )
    assert le_pattern(1000) == r"1(\.0*)?"  # Go writes 1, Python's client 1.0
    assert unit_of("database.connection_pool_utilization") == "%"
    assert unit_of("external_services.retry_count") == ""
    assert unit_of("database.query_p95_ms") == "ms"


def test_header_variables_are_expanded_from_the_given_environment_only() -> None:
    settings = ServerMetricsSettings(prometheus=PROMETHEUS, headers={"Authorization": "Bearer ${PROM_TOKEN}"})
    assert expanded_headers(settings, {"PROM_TOKEN": "t0k"}) == {"Authorization": "Bearer t0k"}
    with pytest.raises(
        ConfigError, match=r"server_metrics\.headers\.Authorization: the environment variable PROM_TOKEN"
    ):
        expanded_headers(settings, {})


# -- budget --------------------------------------------------------------------------------------


def test_server_rules_pass_fail_and_unmeasured_as_on_unmeasured_says() -> None:
    budget = {"database": {"query_p95_ms": 50, "query_p99_ms": 100, "slow_query_threshold_ms": 100}}
    result = run_with(
        [
            metric("database.query_p95_ms", 40.0),
            metric("database.query_p99_ms", 150.0),
            metric("database.slow_query_threshold_ms", None, reason="not measured: Prometheus answered 503: down"),
        ]
    )
    warned = check_budget(gate({}, budget).performance_budget, result, gate({}, budget).server_metrics)
    statuses = {(c.endpoint, c.rule): c.status for c in warned.checks if c.source == "server_metrics"}
    assert statuses == {("database", "query_p95_ms"): "pass", ("database", "query_p99_ms"): "fail"}
    [unmeasured] = warned.unmeasured
    assert (unmeasured.rule, unmeasured.limit) == ("slow_query_threshold_ms", 1.0)  # the share allowed, default 1 %
    assert unmeasured.reason == "not measured: Prometheus answered 503: down"
    strict = gate({"on_unmeasured": "fail"}, budget)
    failed = check_budget(strict.performance_budget, result, strict.server_metrics)
    slow = next(c for c in failed.checks if c.rule == "slow_query_threshold_ms")
    assert (slow.status, slow.measured, slow.reason) == ("fail", None, "not measured: Prometheus answered 503: down")
    assert not failed.unmeasured
    headline = judge(strict, result, history=History()).report.headline
    assert "database slow queries not measured: Prometheus answered 503: down" in headline


def test_without_server_metrics_the_rules_stay_not_measured_as_written() -> None:
    budget = PerformanceBudget.model_validate({"database": {"slow_query_threshold_ms": 100, "slow_query_percent": 2}})
    report = check_budget(budget, run_with([]))
    assert [(u.rule, u.limit, u.reason) for u in report.unmeasured] == [
        ("slow_query_threshold_ms", 100, NOT_MEASURED),
        ("slow_query_percent", 2, NOT_MEASURED),
    ]


def test_a_custom_metric_can_be_a_lower_bound() -> None:
    custom = {"custom": [{"name": "cache_hit_percent", "query": "x", "limit": 90, "higher_is_worse": False}]}
    judged = gate(custom, {})
    report = check_budget(
        judged.performance_budget, run_with([metric("cache_hit_percent", 85.0)]), judged.server_metrics
    )
    [check] = report.checks[-1:]
    assert (check.endpoint, check.rule, check.upper_bound, check.status) == (
        "custom",
        "cache_hit_percent",
        False,
        "fail",
    )


# -- verdicts and the report ---------------------------------------------------------------------


def history_of(values: list[float]) -> History:
    return History(runs=[run_with([metric("database.query_p95_ms", v)]) for v in values])


def test_a_server_side_regression_against_history_fails_the_gate() -> None:
    judged = gate({}, {"database": {"query_p95_ms": 500}})
    report = judge(judged, run_with([metric("database.query_p95_ms", 30.0)]), history=history_of([10, 10.2, 9.9, 10.1]))
    assert report.report.server is not None
    [row] = report.report.server.rows
    assert (row.verdict, row.baseline_runs, row.baseline) == ("regression", 4, pytest.approx(10.05))
    assert report.report.status == "fail"
    assert "1 server-side regression" in report.report.headline
    assert report.exit_code == 1
    unchanged = judge(judged, run_with([metric("database.query_p95_ms", 10.0)]), history=history_of([10, 10.2, 9.9]))
    assert unchanged.report.server is not None
    assert unchanged.report.server.rows[0].verdict == "unchanged"
    assert unchanged.exit_code == 0


def test_one_or_two_baseline_runs_show_the_change_without_a_verdict() -> None:
    judged = gate({}, {"database": {"query_p95_ms": 500}})
    report = judge(judged, run_with([metric("database.query_p95_ms", 30.0)]), history=history_of([10.0]))
    assert report.report.server is not None
    [row] = report.report.server.rows
    assert (row.verdict, row.delta_percent) == ("inconclusive", pytest.approx(200.0))
    assert report.exit_code == 0


def test_duet_shows_the_base_deployments_value_from_the_same_run() -> None:
    judged = gate({"baseline_matchers": 'job="base"'}, {"database": {"query_p95_ms": 500}})
    result = run_with([metric("database.query_p95_ms", 12.0, base_value=10.0)])
    base = ArmResult(target="http://base", aggregate=result.aggregate, endpoints=result.endpoints)
    report = judge(judged, result.model_copy(update={"base": base}), history=History())
    assert report.report.server is not None
    assert report.report.server.mode == "duet"
    [row] = report.report.server.rows
    assert (row.baseline, row.delta_percent, row.verdict) == (10.0, pytest.approx(20.0), "not-judged")


def test_the_server_side_section_escapes_what_prometheus_and_the_config_wrote() -> None:
    hostile = "<img src=x> @team [link](http://evil) | x"
    result = run_with(
        [
            metric("database.query_p95_ms", None, reason=f"not measured: Prometheus answered 400: {hostile}"),
            metric("database.query_p99_ms", 20.0, series=[ServerPoint(at=1.0, value=1.0), ServerPoint(at=2, value=3)]),
        ],
        requests={"GET /api/products": 40.0},
    )
    result = result.model_copy(
        update={"server": [result.server[0].model_copy(update={"query": hostile}), result.server[1]]}
    )
    judged = gate({}, {"database": {"query_p95_ms": 50, "query_p99_ms": 10}})
    rendered = render(judge(judged, result, history=History()).report)
    section = rendered.markdown.split("### Server side", 1)[1]
    assert "<img" not in section
    assert "@team" not in section
    assert "[link](http" not in section
    assert "\\[link\\]" in section
    assert "PromQL used" in section
    assert "the load did not reach the service as sent" in section  # 40 counted of 1,000 sent
    assert "Server side (Prometheus)" in rendered.terminal
    assert "requests differ: GET /api/products sent 1,000, the server counted 40" in rendered.terminal
    assert json.loads(rendered.json)["server"]["rows"][1]["status"] == "fail"


def test_result_files_of_schema_3_still_read_and_4_round_trips() -> None:
    result = run_with([metric("database.query_p95_ms", 5.0, series=[ServerPoint(at=1.0, value=5.0)])])
    assert result.schema_version == 4
    assert parse_result(result.model_dump_json(), source="r.json") == result
    old = json.loads(result.model_dump_json())
    del old["server"], old["server_requests"]
    old["schema_version"] = 3
    assert parse_result(json.dumps(old), source="old.json").server == []
