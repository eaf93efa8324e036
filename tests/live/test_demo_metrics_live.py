"""The demo service's /metrics: what a Prometheus scraping it sees (issue 14, item 6)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import DemoService, start_demo_service
from tests.support.prometheus import prometheus_stack

SENT = {"GET /api/products": 5, "GET /api/products/7": 4, "POST /api/orders": 3}


@pytest.fixture
def n_plus_one() -> Iterator[DemoService]:
    """A demo service whose orders run each query three times (``n_plus_one: 3``)."""
    service = start_demo_service({"POST /api/orders": {"n_plus_one": 3}})
    yield service
    service.stop()


def _send(service: DemoService) -> None:
    with httpx.Client(base_url=service.url, timeout=5) as client:
        for line, times in SENT.items():
            method, path = line.split(" ")
            for _ in range(times):
                client.request(method, path, json={"productId": 1} if method == "POST" else None).raise_for_status()


def _samples(service: DemoService) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    text = httpx.get(f"{service.url}/metrics", timeout=5).text
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def _labels(**labels: str) -> frozenset[tuple[str, str]]:
    return frozenset(labels.items())


def test_metrics_count_requests_queries_and_calls_per_route(n_plus_one: DemoService) -> None:
    _send(n_plus_one)
    samples = _samples(n_plus_one)
    http = "http_request_duration_seconds_count"
    assert samples[(http, _labels(method="GET", endpoint="/api/products", status="200"))] == 5
    assert samples[(http, _labels(method="GET", endpoint="/api/products/{id}", status="200"))] == 4
    assert samples[(http, _labels(method="POST", endpoint="/api/orders", status="201"))] == 3
    queries = "db_query_duration_seconds_count"
    assert samples[(queries, _labels(endpoint="/api/products"))] == 5 * 2
    assert samples[(queries, _labels(endpoint="/api/products/{id}"))] == 4 * 1
    assert samples[(queries, _labels(endpoint="/api/orders"))] == 3 * 3 * 3  # the N+1
    assert samples[("external_request_duration_seconds_count", _labels(service="payments"))] == 3
    assert samples[("external_request_retries_total", _labels(service="payments"))] == 0
    assert samples[("db_pool_connections_in_use", _labels())] == 0
    assert samples[("db_pool_connections_max", _labels())] == 10
    assert n_plus_one.total() == sum(SENT.values())  # /metrics is not a request of the shop


def test_knobs_and_control_change_the_queries_and_the_pool(fresh_demo: DemoService) -> None:
    fresh_demo.set_knobs({"GET /api/products": {"n_plus_one": 11}})
    httpx.post(f"{fresh_demo.url}/__control", json={"pool_size": 4}, timeout=5).raise_for_status()
    httpx.get(f"{fresh_demo.url}/api/products", timeout=5).raise_for_status()
    samples = _samples(fresh_demo)
    assert samples[("db_query_duration_seconds_count", _labels(endpoint="/api/products"))] == 2 * 11
    assert samples[("db_pool_connections_max", _labels())] == 4


def test_a_real_prometheus_scrapes_the_demo_service(tmp_path: Path, n_plus_one: DemoService) -> None:
    _send(n_plus_one)
    target = n_plus_one.url.removeprefix("http://")
    with prometheus_stack(tmp_path, targets=[target]) as stack:
        total = sum(SENT.values())
        stack.wait_for(
            "sum(http_request_duration_seconds_count)", lambda r: bool(r) and float(r[0]["value"][1]) == total
        )
        found = stack.query('sum(db_query_duration_seconds_count{endpoint="/api/orders"})')
        assert float(found[0]["value"][1]) == 27
