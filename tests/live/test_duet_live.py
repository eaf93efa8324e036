"""Duet mode live: real Locust against two demo services.

Every request reaches both deployments and is counted on its own arm; the statistics are checked
with synthetic runs in tests/unit/test_duet.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ci_perf.config import Config, parse_config, with_comparison
from ci_perf.pipeline import run_pipeline
from ci_perf.results import load_result
from tests.conftest import DemoService, start_demo_service, write


@pytest.fixture
def two_services() -> tuple[DemoService, DemoService]:
    base = start_demo_service()
    head = start_demo_service()
    yield base, head  # type: ignore[misc]
    base.stop()
    head.stop()


def _config(tmp_path: Path, body: str, base: DemoService) -> Config:
    config = parse_config(body, source=write(tmp_path / "ci-perf.yml", body))
    return with_comparison(config, baseline_target=base.url)


@pytest.mark.parametrize("processes", [1, 2])
def test_every_request_reaches_both_deployments_and_is_counted_on_its_arm(
    tmp_path: Path, two_services: tuple[DemoService, DemoService], processes: int
) -> None:
    base, head = two_services
    body = (
        "endpoints:\n  - GET /api/products\n  - 'POST /api/orders {\"productId\": 1}'\n"
        f"load: {{users: 4, spawn_rate: 20, duration: 3s, warmup: 0s, processes: {processes}}}\n"
        "readiness: {path: /health, timeout: 10s}\n"
    )
    outcome = run_pipeline(
        _config(tmp_path, body, base),
        out_dir=tmp_path / "out",
        target=head.url,
        environ={},
        cwd=tmp_path,
        echo=None,
    )
    result = outcome.result
    assert result.base is not None
    served = [s.total() for s in (head, base)]  # the service does not count the readiness probe
    assert [result.aggregate.requests, result.base.aggregate.requests] == served
    assert served[0] == served[1]
    assert outcome.report.comparison is not None
    assert outcome.report.comparison.mode == "duet"
    assert "measured in the same run" in (tmp_path / "out" / "report.md").read_text()
    assert load_result(tmp_path / "out" / "result.json").base is not None


def test_a_locustfile_user_with_validation_code_runs_it_once_per_task_in_duet_mode(
    tmp_path: Path, two_services: tuple[DemoService, DemoService]
) -> None:
    base, head = two_services
    locustfile = write(
        tmp_path / "locustfile.py",
        "from locust import HttpUser, task, constant\n"
        "class Shop(HttpUser):\n"
        "    wait_time = constant(0.01)\n"
        "    @task\n"
        "    def products(self):\n"
        "        with self.client.get('/api/products', catch_response=True) as response:\n"
        "            if response.status_code != 200:\n"
        "                response.failure('bad status')\n",
    )
    body = (
        f"locustfile: {locustfile.name}\nload: {{users: 2, spawn_rate: 10, duration: 3s, warmup: 0s}}\n"
        "readiness: {path: /health, timeout: 10s}\n"
    )
    outcome = run_pipeline(
        _config(tmp_path, body, base), out_dir=tmp_path / "out", target=head.url, environ={}, cwd=tmp_path, echo=None
    )
    assert outcome.result.base is not None
    counts = [json.loads(json.dumps(s.stats()))["counts"].get("GET /api/products", 0) for s in (head, base)]
    assert counts[0] == counts[1] == outcome.result.aggregate.requests == outcome.result.base.aggregate.requests
