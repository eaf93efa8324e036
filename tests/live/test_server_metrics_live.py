"""Server-side budgets against a real Prometheus (issue 14): values over the measured window, faults as
"not measured: …", PromQL checked before the load, credentials from the environment, the whole `ci-perf run`.

Prometheus and the Pushgateway are the Debian packages, started on free loopback ports by
tests/support/prometheus.py (CI_PERF_PROMETHEUS=required makes a missing binary a failure). Histograms
pushed to the Pushgateway give values known exactly: every rule here is a ratio of rates over one scrape
grid, so the extrapolation at the window's edges cancels.
"""

from __future__ import annotations

import base64
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ci_perf.config import PerformanceBudget, ServerMetricsSettings
from ci_perf.errors import ConfigError
from ci_perf.loadtest.runner import free_port
from ci_perf.results import ServerMetric
from ci_perf.servermetrics import check_queries, measure_server
from tests.conftest import DemoService, start_demo_service, write
from tests.support.prometheus import AUTH_PASSWORD, AUTH_USER, PrometheusStack, prometheus_stack

ROOT = Path(__file__).resolve().parents[2]
BUDGET = PerformanceBudget.model_validate(
    {
        "database": {"query_p95_ms": 600, "query_p99_ms": 500, "connection_pool_utilization": 70,
                     "slow_query_threshold_ms": 100, "slow_query_percent": 5},
        "external_services": {"p95_latency_ms": 300},
    }
)  # fmt: skip


def exposition(fast: int, slow: int, *, in_use: int = 3) -> str:
    """``fast`` queries ≤ 10 ms, ``slow`` ones in (100 ms, 1 s]; a pool of 10 with ``in_use`` taken."""
    total = fast + slow
    return f"""# TYPE db_query_duration_seconds histogram
db_query_duration_seconds_bucket{{le="0.01"}} {fast}
db_query_duration_seconds_bucket{{le="0.1"}} {fast}
db_query_duration_seconds_bucket{{le="1.0"}} {total}
db_query_duration_seconds_bucket{{le="+Inf"}} {total}
db_query_duration_seconds_count {total}
db_query_duration_seconds_sum 0
# TYPE db_pool_connections_in_use gauge
db_pool_connections_in_use {in_use}
# TYPE db_pool_connections_max gauge
db_pool_connections_max 10
"""


def pushed_window(stack: PrometheusStack, job: str, before: str, after: str) -> tuple[float, float]:
    """Push ``before``, open the window once Prometheus has it, push ``after``, close the window once it has that.

    The window holds two scrapes of each state, so both ends of every rate lie in it.
    """
    series = f'db_query_duration_seconds_count{{job="{job}"}}'
    stack.push(before, job=job)
    stack.wait_for(series)
    start = time.time()
    stack.wait_for(f"timestamp({series}) > {start + 1.5:.3f}")  # scraped twice after the start
    stack.push(after, job=job)
    stack.wait_for(f"{series} > 0")
    seen = time.time()
    stack.wait_for(f"timestamp({series}) > {seen + 0.5:.3f}")  # and twice after the change
    return start, time.time()


def settings(url: str, **more: object) -> ServerMetricsSettings:
    return ServerMetricsSettings.model_validate({"prometheus": url, "step": "1s", **more})


def by_name(metrics: list[ServerMetric]) -> dict[str, ServerMetric]:
    return {metric.name: metric for metric in metrics}


@pytest.fixture(scope="module")
def service() -> Iterator[DemoService]:
    demo = start_demo_service({"GET /api/products": {"latency_ms": 4, "jitter_ms": 1}})
    yield demo
    demo.stop()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, service: DemoService) -> Iterator[PrometheusStack]:
    with prometheus_stack(tmp_path_factory.mktemp("prometheus"), targets=[service.url.removeprefix("http://")]) as s:
        yield s


def test_each_rule_is_measured_over_the_window_with_a_series(stack: PrometheusStack) -> None:
    start, end = pushed_window(stack, "exact", exposition(0, 0), exposition(90, 10))
    metrics, _ = measure_server(settings(stack.url, matchers='job="exact"'), BUDGET, start=start, end=end, environ={})
    found = by_name(metrics)
    # 95th of 100 queries: 90 below 100 ms, so 5/10 into the (0.1 s, 1 s] bucket: 0.1 + 0.5 × 0.9 s
    assert found["database.query_p95_ms"].value == pytest.approx(550)
    assert found["database.query_p99_ms"].value == pytest.approx(910)
    assert found["database.slow_query_threshold_ms"].value == pytest.approx(10)  # 10 of 100 above 100 ms
    assert found["database.connection_pool_utilization"].value == pytest.approx(30)
    assert found["database.query_p95_ms"].series, "a series over the window's steps"
    assert all(start < point.at <= end + 1 for point in found["database.query_p95_ms"].series)
    assert f"[{round((end - start) * 1000)}ms]" in found["database.query_p95_ms"].query  # the window, filled in
    assert 'job="exact"' in found["database.query_p95_ms"].query
    external = found["external_services.p95_latency_ms"]
    assert external.value is None
    assert external.reason is not None
    assert external.reason.startswith("not measured: no data")


def test_a_custom_metric_with_several_series_takes_the_worst(stack: PrometheusStack) -> None:
    stack.push('# TYPE queue_depth gauge\nqueue_depth{queue="a"} 4\nqueue_depth{queue="b"} 9\n', job="custom")
    stack.wait_for('count(queue_depth{job="custom"}) == 2')
    now = time.time()
    custom = [
        {"name": "deepest", "query": "max_over_time(queue_depth{{matchers}}[{window}])", "limit": 5},
        {"name": "shallowest", "query": "max_over_time(queue_depth{{matchers}}[{window}])", "limit": 1,
         "higher_is_worse": False},
    ]  # fmt: skip
    config = settings(stack.url, matchers='job="custom"', custom=custom)
    metrics, _ = measure_server(config, PerformanceBudget(), start=now - 3, end=now, environ={})
    assert [(m.name, m.value) for m in metrics] == [("deepest", 9.0), ("shallowest", 4.0)]


def test_prometheus_faults_make_metrics_not_measured_with_the_reason(stack: PrometheusStack) -> None:
    budget = PerformanceBudget.model_validate({"database": {"query_p95_ms": 50}})
    now = time.time()
    unreachable = settings(f"http://127.0.0.1:{free_port()}")
    metrics, requests = measure_server(unreachable, budget, start=now - 10, end=now, environ={})
    assert metrics[0].value is None
    assert "is unreachable (ConnectError)" in (metrics[0].reason or "")
    assert requests == {}
    with socket.create_server(("127.0.0.1", 0)) as silent:  # accepts, never answers
        slow = settings(f"http://127.0.0.1:{silent.getsockname()[1]}", timeout="300ms")
        metrics, _ = measure_server(slow, budget, start=now - 10, end=now, environ={})
    assert "did not answer within 0.3 s" in (metrics[0].reason or "")
    stack.push('# TYPE dup gauge\ndup{a="1"} 1\ndup{a="2"} 1\n', job="dup")
    stack.wait_for('count(dup{job="dup"}) == 2')
    failing = settings(stack.url, custom=[{"name": "clash", "query": "dup + on() dup", "limit": 1}])
    metrics, _ = measure_server(failing, PerformanceBudget(), start=time.time() - 3, end=time.time(), environ={})
    assert metrics[0].value is None
    assert metrics[0].reason is not None
    assert metrics[0].reason.startswith("not measured: Prometheus answered 422: ")
    assert "many-to-many" in metrics[0].reason or "duplicate series" in metrics[0].reason


def test_a_query_prometheus_cannot_parse_is_a_config_error_naming_the_setting(stack: PrometheusStack) -> None:
    broken = settings(
        stack.url, queries={"database.query_p95_ms": "sum(rate(db_query_duration_seconds_bucket[{window}]"}
    )
    with pytest.raises(ConfigError) as caught:
        check_queries(broken, BUDGET, environ={}, now=time.time())
    message = str(caught.value)
    assert "server_metrics.queries.database.query_p95_ms: Prometheus cannot parse it" in message
    assert "unclosed left parenthesis" in message
    assert "the default query of" not in message  # the defaults parse
    warning = check_queries(settings(f"http://127.0.0.1:{free_port()}"), BUDGET, environ={}, now=time.time())
    assert warning is not None
    assert warning.startswith("server_metrics: the queries were not checked: Prometheus at")


def test_the_header_credential_comes_from_the_environment_and_is_never_written(tmp_path: Path) -> None:
    token = base64.b64encode(f"{AUTH_USER}:{AUTH_PASSWORD}".encode()).decode()
    with prometheus_stack(tmp_path / "prom", basic_auth=True) as secured:
        secured.push(exposition(5, 0), job="auth")
        secured.wait_for('db_pool_connections_max{job="auth"}')
        now = time.time()
        budget = PerformanceBudget.model_validate({"database": {"connection_pool_utilization": 70}})
        config = settings(secured.url, matchers='job="auth"', headers={"Authorization": "Basic ${PROM_BASIC}"})
        metrics, _ = measure_server(config, budget, start=now - 2, end=now, environ={"PROM_BASIC": token})
        assert metrics[0].value == pytest.approx(30)
        assert token not in metrics[0].model_dump_json()
        without = settings(secured.url)
        metrics, _ = measure_server(without, budget, start=now - 2, end=now, environ={})
        assert "answered 401" in (metrics[0].reason or "")
    with pytest.raises(
        ConfigError, match=r"server_metrics\.headers\.Authorization: the environment variable PROM_BASIC"
    ):
        check_queries(config, budget, environ={}, now=now)


# -- the whole `ci-perf run` -------------------------------------------------------------------------


def run(tmp_path: Path, target: str, server_metrics: str, *, budget: str, duration: str = "4s",
        args: tuple[str, ...] = (), env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:  # fmt: skip
    config = write(
        tmp_path / "ci-perf.yml",
        f"target: {target}\nendpoints: [GET /api/products]\n"
        f"load: {{users: 3, spawn_rate: 10, duration: {duration}, warmup: 1s}}\n"
        f"performance_budget: {budget}\nserver_metrics: {server_metrics}\n",
    )
    command = [
        sys.executable,
        "-m",
        "ci_perf.cli",
        "run",
        "--config",
        str(config),
        "--out",
        str(tmp_path / "out"),
        *args,
    ]
    environ = {k: v for k, v in os.environ.items() if not k.startswith("GITHUB")} | (env or {})
    environ["PYTHONPATH"] = str(ROOT)  # this checkout's ci_perf, whatever the venv's editable install points at
    return subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=120, env=environ, check=False)


def test_a_run_judges_the_database_budget_and_reports_the_server_side(
    tmp_path: Path, stack: PrometheusStack, service: DemoService
) -> None:
    stack.wait_for("db_pool_connections_max")  # the demo service is scraped
    budget = "{database: {query_p95_ms: 0.01, connection_pool_utilization: 100}}"
    done = run(tmp_path, service.url, f"{{prometheus: {stack.url}, step: 1s}}", budget=budget, duration="6s")
    assert done.returncode == 1, done.stdout + done.stderr
    assert "database query p95" in done.stdout
    assert "Server side (Prometheus)" in done.stdout
    result = json.loads((tmp_path / "out/result.json").read_text())
    assert result["schema_version"] == 4
    names = [m["name"] for m in result["server"]]
    assert names == ["database.query_p95_ms", "database.connection_pool_utilization"]
    assert all(m["value"] is not None and m["series"] for m in result["server"])
    sent = sum(e["stats"]["requests"] for e in result["endpoints"])
    # the server's own count, from a counter's increase over the window (extrapolated from a few scrapes)
    assert result["server_requests"]["GET /api/products"] == pytest.approx(sent, rel=0.25)
    report = (tmp_path / "out/report.md").read_text()
    assert "### Server side" in report
    assert "PromQL used" in report
    assert "the server counted" in report


def test_an_unreachable_prometheus_warns_by_default_and_fails_when_told(tmp_path: Path, service: DemoService) -> None:
    nowhere = f"http://127.0.0.1:{free_port()}"
    budget = "{database: {query_p95_ms: 50}}"
    warned = run(tmp_path / "warn", service.url, f"{{prometheus: {nowhere}}}", budget=budget)
    assert warned.returncode == 0, warned.stdout + warned.stderr
    assert "ci-perf: warning: server_metrics: the queries were not checked" in warned.stdout
    assert "Prometheus at" in (tmp_path / "warn/out/report.md").read_text()
    assert "is unreachable (ConnectError)" in (tmp_path / "warn/out/report.md").read_text()
    failed = run(tmp_path / "fail", service.url, f"{{prometheus: {nowhere}, on_unmeasured: fail}}", budget=budget)
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert "budget violation" in failed.stdout


def test_a_query_that_does_not_parse_exits_2_before_any_load(
    tmp_path: Path, stack: PrometheusStack, service: DemoService
) -> None:
    before = service.total()
    server_metrics = f"{{prometheus: {stack.url}, queries: {{database.query_p95_ms: 'rate(x[{{window}}]'}}}}"
    done = run(tmp_path, service.url, server_metrics, budget="{database: {query_p95_ms: 50}}")
    assert done.returncode == 2, done.stdout + done.stderr
    assert "server_metrics.queries.database.query_p95_ms: Prometheus cannot parse it" in done.stderr + done.stdout
    assert "Traceback" not in done.stderr
    assert service.total() == before  # no load was sent
    assert not (tmp_path / "out/result.json").exists()


def test_duet_measures_the_base_deployment_through_its_own_series(tmp_path: Path) -> None:
    head = start_demo_service({"GET /api/products": {"latency_ms": 6, "jitter_ms": 1, "n_plus_one": 4}})
    base = start_demo_service({"GET /api/products": {"latency_ms": 6, "jitter_ms": 1}})
    try:
        targets = [head.url.removeprefix("http://"), base.url.removeprefix("http://")]
        with prometheus_stack(tmp_path / "prom", targets=targets) as duo:  # jobs target0 (head), target1 (base)
            duo.wait_for("count(db_pool_connections_max) == 2")
            server_metrics = (
                f"{{prometheus: {duo.url}, matchers: 'job=\"target0\"', baseline_matchers: 'job=\"target1\"'}}"
            )
            done = run(
                tmp_path,
                head.url,
                server_metrics + f"\ncomparison: {{baseline_target: {base.url}}}",
                budget="{database: {query_p95_ms: 1000}}",
            )
    finally:
        head.stop()
        base.stop()
    assert done.returncode == 0, done.stdout + done.stderr
    [p95] = json.loads((tmp_path / "out/result.json").read_text())["server"]
    assert p95["value"] is not None
    assert p95["base_value"] is not None
    assert 'job="target0"' in p95["query"]
    report = (tmp_path / "out/report.md").read_text()
    assert "base (same run)" in report
    assert "one value per arm" in report


QUERIES_PER_REQUEST = (
    "sum(rate(db_query_duration_seconds_count{{matchers}}[{window}])) "
    "/ sum(rate(http_request_duration_seconds_count{{matchers}}[{window}]))"
)


def test_an_n_plus_one_is_a_server_side_regression_against_the_recorded_history(tmp_path: Path) -> None:
    service = start_demo_service({"GET /api/products": {"latency_ms": 5, "jitter_ms": 0.5, "queries": 2}})
    try:
        with prometheus_stack(tmp_path / "prom", targets=[service.url.removeprefix("http://")]) as watched:
            watched.wait_for("db_pool_connections_max")
            custom = f"[{{name: queries_per_request, query: '{QUERIES_PER_REQUEST}', limit: 100}}]"
            server_metrics = f"{{prometheus: {watched.url}, custom: {custom}}}"
            for _ in range(3):
                recorded = run(
                    tmp_path, service.url, server_metrics, budget="{}", args=("--record", "--branch", "main")
                )
                assert recorded.returncode == 0, recorded.stdout + recorded.stderr
            service.set_knobs({"GET /api/products": {"latency_ms": 5, "jitter_ms": 0.5, "queries": 2, "n_plus_one": 4}})
            pr = run(tmp_path, service.url, server_metrics, budget="{}", args=("--branch", "feature"))
    finally:
        service.stop()
    report = json.loads((tmp_path / "out/report.json").read_text())
    [row] = report["server"]["rows"]
    assert row["name"] == "queries_per_request"
    assert row["baseline_runs"] == 3
    assert row["baseline"] == pytest.approx(2, rel=0.1)
    assert row["value"] == pytest.approx(8, rel=0.1)  # 2 queries × 4: the N+1
    assert row["verdict"] == "regression"
    assert pr.returncode == 1, pr.stdout + pr.stderr
    assert "server-side regression" in pr.stdout


def test_validate_has_prometheus_parse_the_queries(tmp_path: Path, stack: PrometheusStack) -> None:
    text = "target: http://127.0.0.1:9\nendpoints: [GET /x]\nperformance_budget: {database: {query_p95_ms: 50}}\n"
    good = write(tmp_path / "good.yml", text + f"server_metrics: {{prometheus: {stack.url}}}\n")
    bad = write(
        tmp_path / "bad.yml",
        text + f"server_metrics: {{prometheus: {stack.url}, custom: [{{name: x, query: 'a +', limit: 1}}]}}\n",
    )
    environ = dict(os.environ) | {"PYTHONPATH": str(ROOT)}
    validate = [sys.executable, "-m", "ci_perf.cli", "validate"]
    passed = subprocess.run([*validate, str(good)], capture_output=True, text=True, env=environ, check=False)
    assert passed.returncode == 0, passed.stdout + passed.stderr
    failed = subprocess.run([*validate, str(bad)], capture_output=True, text=True, env=environ, check=False)
    assert failed.returncode == 2
    assert "server_metrics.custom[0].query: Prometheus cannot parse it" in failed.stderr
