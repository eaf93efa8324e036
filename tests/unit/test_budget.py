from __future__ import annotations

from pathlib import Path

import pytest

from ci_perf.analysis.budget import check_budget, effective_budget
from ci_perf.analysis.summarize import summarize_run
from ci_perf.config import EndpointBudget, LoadSettings, PerformanceBudget, parse_config
from ci_perf.errors import ConfigError
from ci_perf.results import AGGREGATE, Capacity, RunResult, TaskException
from tests.conftest import collected_run


def _result() -> RunResult:
    collected = collected_run(
        endpoints={"GET /api/products": [10.0] * 100, "POST /api/orders": [40.0] * 100},
        failures={"POST /api/orders": 5},
    )
    return summarize_run(collected, load=LoadSettings(duration=10, warmup=0), target="http://x", tool_version="t")


def test_latency_and_error_rules_apply_to_each_endpoint() -> None:
    budget = PerformanceBudget(api_endpoints=EndpointBudget(p95_latency_ms=30, error_rate_percent=1))
    report = check_budget(budget, _result())
    by_key = {(c.endpoint, c.rule): c.status for c in report.checks}
    assert by_key[("GET /api/products", "p95_latency_ms")] == "pass"
    assert by_key[("POST /api/orders", "p95_latency_ms")] == "fail"
    assert by_key[("POST /api/orders", "error_rate_percent")] == "fail"
    assert not report.passed
    assert len(report.violations) == 2


def test_throughput_applies_to_the_aggregate_unless_overridden() -> None:
    budget = PerformanceBudget(
        api_endpoints=EndpointBudget(throughput_rps=150),
        endpoints={"GET *": EndpointBudget(throughput_rps=500)},
    )
    checks = check_budget(budget, _result()).checks
    aggregate = next(c for c in checks if c.endpoint == AGGREGATE)
    assert aggregate.rule == "throughput_rps"
    assert aggregate.status == "pass"  # 200 rps ≥ 150
    products = next(c for c in checks if (c.endpoint, c.rule) == ("GET /api/products", "throughput_rps"))
    assert products.status == "fail"  # 100 rps < 500
    assert products.measured is not None
    assert products.measured > 99


def test_later_glob_overrides_earlier_field_by_field() -> None:
    budget = PerformanceBudget(
        api_endpoints=EndpointBudget(p95_latency_ms=100, p99_latency_ms=500),
        endpoints={"POST *": EndpointBudget(p95_latency_ms=50), "POST /api/orders": EndpointBudget(p95_latency_ms=20)},
    )
    limits, sources = effective_budget(budget, "POST /api/orders")
    assert limits == {"p95_latency_ms": 20, "p99_latency_ms": 500, "error_rate_percent": 1.0}
    assert sources == {
        "p95_latency_ms": "POST /api/orders",
        "p99_latency_ms": "api_endpoints",
        "error_rate_percent": "default",  # no rule limits its errors
    }


def test_unmatched_override_patterns_and_unmeasured_sections_are_reported() -> None:
    budget = PerformanceBudget(
        endpoints={"GET /nothing*": EndpointBudget(p95_latency_ms=1)},
        database={"query_p95_ms": 50},
        external_services={"timeout_ms": 5000},
    )
    report = check_budget(budget, _result())
    assert report.unmatched_patterns == ["GET /nothing*"]
    assert [(u.section, u.rule) for u in report.unmeasured] == [
        ("database", "query_p95_ms"),
        ("external_services", "timeout_ms"),
    ]
    assert all("not measured" in u.reason for u in report.unmeasured)


def test_the_default_error_limit_applies_to_each_endpoint_no_rule_covers() -> None:
    budget = PerformanceBudget(endpoints={"GET *": EndpointBudget(error_rate_percent=0)})
    report = check_budget(budget, _result())
    errors = {c.endpoint: (c.source, c.limit, c.status) for c in report.checks if c.rule == "error_rate_percent"}
    assert errors == {"GET /api/products": ("GET *", 0, "pass"), "POST /api/orders": ("default", 1.0, "fail")}
    assert [c.endpoint for c in report.default_checks] == ["POST /api/orders"]


def test_the_default_error_limit_can_be_changed_or_disabled() -> None:
    looser = check_budget(PerformanceBudget(default_error_rate_percent=10), _result())
    assert looser.passed
    assert {c.limit for c in looser.checks} == {10}
    assert check_budget(PerformanceBudget(default_error_rate_percent=None), _result()).checks == []


def test_a_breakpoint_run_has_no_default_error_limit() -> None:
    capacity = Capacity(users=8, rps=100.0, broke_at_users=10, reason="errors", limits={}, steps=[])
    breakpoint_run = _result().model_copy(update={"capacity": capacity})
    assert check_budget(PerformanceBudget(), breakpoint_run).checks == []


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        pytest.param("", 1.0, id="unset-is-one-percent"),
        pytest.param("  default_error_rate_percent: 5\n", 5.0, id="changed"),
        pytest.param("  default_error_rate_percent: null\n", None, id="disabled"),
    ],
)
def test_the_default_error_limit_is_read_from_the_config(line: str, expected: float | None) -> None:
    text = f"endpoints: [GET /a]\nperformance_budget:\n{line}  api_endpoints: {{p95_latency_ms: 100}}\n"
    config = parse_config(text, source=Path("ci-perf.yml"), check_files=False)
    assert config.gate.performance_budget.default_error_rate_percent == expected


def test_a_default_error_limit_out_of_range_is_a_config_error() -> None:
    text = "endpoints: [GET /a]\nperformance_budget: {default_error_rate_percent: 120}\n"
    with pytest.raises(ConfigError, match=r"performance_budget\.default_error_rate_percent"):
        parse_config(text, source=Path("ci-perf.yml"), check_files=False)


def _with_exceptions(count: int) -> RunResult:
    raised = [TaskException(type="ValueError", message="bad", count=count, where="locustfile.py:9")]
    return _result().model_copy(update={"exceptions": raised})


@pytest.mark.parametrize(
    ("limit", "raised", "status"),
    [(0, 3, "fail"), (5, 3, "pass"), (2, 3, "fail"), (None, 3, None), (0, 0, None)],
)
def test_task_exceptions_fail_the_run_by_default(limit: int | None, raised: int, status: str | None) -> None:
    """Plain Locust exits 1 on an unhandled task exception: so does ci-perf, unless the budget allows some."""
    budget = PerformanceBudget.model_validate({} if limit == 0 else {"max_task_exceptions": limit})
    result = _with_exceptions(raised) if raised else _result()
    checks = [c for c in check_budget(budget, result).checks if c.rule == "max_task_exceptions"]
    assert [c.status for c in checks] == ([status] if status else [])
    if checks:
        assert checks[0].measured == raised
        assert checks[0].endpoint == "(locustfile)"
