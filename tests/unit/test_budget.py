from __future__ import annotations

from ci_perf.analysis.budget import check_budget, effective_budget
from ci_perf.analysis.summarize import summarize_run
from ci_perf.config import EndpointBudget, LoadSettings, PerformanceBudget
from ci_perf.results import AGGREGATE, RunResult
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
    products = next(c for c in checks if c.endpoint == "GET /api/products")
    assert products.status == "fail"  # 100 rps < 500
    assert products.measured is not None
    assert products.measured > 99


def test_later_glob_overrides_earlier_field_by_field() -> None:
    budget = PerformanceBudget(
        api_endpoints=EndpointBudget(p95_latency_ms=100, p99_latency_ms=500),
        endpoints={"POST *": EndpointBudget(p95_latency_ms=50), "POST /api/orders": EndpointBudget(p95_latency_ms=20)},
    )
    limits, sources = effective_budget(budget, "POST /api/orders")
    assert limits == {"p95_latency_ms": 20, "p99_latency_ms": 500}
    assert sources == {"p95_latency_ms": "POST /api/orders", "p99_latency_ms": "api_endpoints"}


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
