"""`ci-perf demo`'s server side: its own Prometheus, and the N+1 as a database budget violation (issue 14, item 6)."""

from __future__ import annotations

import io
import os
import time
from pathlib import Path

import httpx
import pytest

from ci_perf.demo.prometheus import HOW_TO_GET_IT, demo_prometheus
from ci_perf.demo.run import _demo_run, _switch_on_n_plus_one, demo_config, demo_service
from tests.support.prometheus import require_binaries


def test_without_a_prometheus_binary_the_demo_says_how_to_get_it(tmp_path: Path) -> None:
    stream = io.StringIO()
    with demo_prometheus(["127.0.0.1:1"], environ={"PATH": str(tmp_path)}, stream=stream) as url:
        assert url is None
    assert stream.getvalue() == HOW_TO_GET_IT
    assert "apt install prometheus" in HOW_TO_GET_IT
    assert demo_config("http://127.0.0.1:1", tmp_path / "store", prometheus=None).server_metrics is None


def test_the_demo_prometheus_scrapes_the_service_and_is_stopped_after() -> None:
    require_binaries()
    with demo_service() as service:
        with demo_prometheus([service.removeprefix("http://")], environ=os.environ, stream=io.StringIO()) as url:
            assert url is not None
            httpx.get(f"{service}/api/products", timeout=5).raise_for_status()
            query = {"query": 'sum(http_request_duration_seconds_count{endpoint="/api/products"})'}
            deadline = time.monotonic() + 20  # a scrape a second: wait for one after the request
            while not httpx.get(f"{url}/api/v1/query", params=query, timeout=5).json()["data"]["result"]:
                assert time.monotonic() < deadline, "Prometheus never scraped the demo service"
                time.sleep(0.2)
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"{url}/-/ready", timeout=2)


def test_the_n_plus_one_fails_the_database_budget_from_the_server_side(tmp_path: Path) -> None:
    require_binaries()
    with (
        demo_service() as service,
        demo_prometheus([service.removeprefix("http://")], environ=os.environ, stream=io.StringIO()) as url,
    ):
        config = demo_config(service, tmp_path / "store", prometheus=url)
        _switch_on_n_plus_one(service)
        outcome = _demo_run(config, out_dir=tmp_path / "out", environ={}, echo=None, progress=None)
    checks = {check.rule: check for check in outcome.report.budget.checks if check.endpoint == "database"}
    assert checks["queries_per_order"].status == "fail"
    assert checks["queries_per_order"].measured == pytest.approx(3 * 2, rel=0.1)
    assert checks["query_p95_ms"].status == "pass"
    assert outcome.exit_code == 1
