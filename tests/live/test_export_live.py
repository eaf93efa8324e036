"""A run's RED metrics in a real Pushgateway (and the Prometheus that scrapes it): issue 14, item 4."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.openmetrics.parser import text_string_to_metric_families

from ci_perf.analysis.summarize import summarize_run
from ci_perf.export import push_metrics, run_labels
from ci_perf.loadtest.runner import free_port
from ci_perf.results import RunResult
from tests.conftest import DemoService, collected_run, write
from tests.support.prometheus import PrometheusStack, prometheus_stack
from tests.support.runs import JUDGED_LOAD

HOSTILE = 'GET /x"} 1\n# EOF\\'
CONFIG = """\
target: {url}
endpoints:
  - GET /api/products
  - 'POST /api/orders {{"productId": 1}}'
load: {{users: 2, spawn_rate: 2, duration: 2s, warmup: 0s, stop_timeout: 3s}}
readiness: {{path: /health, timeout: 5s}}
store: {{path: store}}
export: {{pushgateway: '{pushgateway}', timeout: 1s}}
"""


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[PrometheusStack]:
    with prometheus_stack(tmp_path / "prometheus") as running:
        yield running


def _run(*, sha: str) -> RunResult:
    collected = collected_run(endpoints={"GET /api/products": [10.0, 20.0], HOSTILE: [5.0]})
    return summarize_run(
        collected, load=JUDGED_LOAD, target="http://x", tool_version="t", git_sha=sha, git_branch="b/1"
    )


def _groups(stack: PrometheusStack) -> list[dict[str, Any]]:
    answer = httpx.get(stack.pushgateway.url + "/api/v1/metrics", timeout=5).json()
    assert answer["status"] == "success", answer
    return [group for group in answer["data"] if group["labels"].get("job") == "ci-perf"]


def _series(group: dict[str, Any], name: str) -> dict[str, float]:
    """endpoint → value of ``name`` in a Pushgateway group."""
    return {m["labels"]["endpoint"]: float(m["value"]) for m in group[name]["metrics"]}


def test_a_pushed_run_reads_back_from_the_pushgateway_and_prometheus_with_its_labels(stack: PrometheusStack) -> None:
    result = _run(sha="a" * 40)
    labels = run_labels(result, repository="acme/shop")
    assert push_metrics(result, labels, pushgateway=stack.pushgateway.url, timeout_s=5) is None
    (group,) = _groups(stack)
    grouping = {"job": "ci-perf", "repository": "acme/shop", "branch": "b/1", "scenario": result.meta.scenario_key}
    assert group["labels"] == grouping
    assert _series(group, "ci_perf_requests_total") == {e.name: e.stats.requests for e in result.endpoints}
    assert group["ci_perf_request_duration_seconds"]["type"] == "SUMMARY"
    sample_labels = group["ci_perf_requests_total"]["metrics"][0]["labels"]
    assert {k: v for k, v in sample_labels.items() if k not in {"endpoint", "instance"}} == {
        **grouping,
        "commit": "a" * 40,
    }
    # the Prometheus that scrapes the Pushgateway has them with the run's labels (honor_labels)
    found = stack.wait_for('ci_perf_requests_total{repository="acme/shop",branch="b/1"}', lambda r: len(r) == 2)
    assert {series["metric"]["endpoint"] for series in found} == {"GET /api/products", HOSTILE}


def test_the_next_run_of_a_branch_replaces_its_group(stack: PrometheusStack) -> None:
    for sha in ("a" * 40, "b" * 40):
        result = _run(sha=sha)
        assert (
            push_metrics(result, run_labels(result, repository="r"), pushgateway=stack.pushgateway.url, timeout_s=5)
            is None
        )
    (group,) = _groups(stack)
    commits = {m["labels"]["commit"] for m in group["ci_perf_requests_total"]["metrics"]}
    assert commits == {"b" * 40}


def test_a_pushgateway_that_does_not_answer_is_a_warning_after_the_timeout() -> None:
    with socket.socket() as silent:  # accepts connections (the backlog) and never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        url = f"http://user:secret@127.0.0.1:{silent.getsockname()[1]}"
        result = _run(sha="a" * 40)
        warning = push_metrics(result, run_labels(result, repository=None), pushgateway=url, timeout_s=0.5)
    assert (
        warning == f"metrics not pushed to the Pushgateway at {url.replace('user:secret@', '')}: no answer within 0.5 s"
    )


def _ci_perf(config: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    environ = {**os.environ, "GITHUB_REPOSITORY": "acme/shop", "GITHUB_SHA": "c" * 40, "GITHUB_REF_NAME": "main"}
    command = [sys.executable, "-m", "ci_perf.cli", "run", "--config", str(config), "--out", "out", "--quiet"]
    return subprocess.run(command, cwd=cwd, env=environ, capture_output=True, text=True, timeout=90, check=False)


def test_ci_perf_run_writes_metrics_prom_and_pushes_it(
    tmp_path: Path, demo: DemoService, stack: PrometheusStack
) -> None:
    config = write(tmp_path / "ci-perf.yml", CONFIG.format(url=demo.url, pushgateway=stack.pushgateway.url))
    done = _ci_perf(config, tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "warning" not in done.stdout + done.stderr
    result = json.loads((tmp_path / "out" / "result.json").read_text())
    expected = {e["name"]: e["stats"]["requests"] for e in result["endpoints"]}
    families = text_string_to_metric_families((tmp_path / "out" / "metrics.prom").read_text(encoding="utf-8"))
    requests = next(f for f in families if f.name == "ci_perf_requests")
    assert {s.labels["endpoint"]: s.value for s in requests.samples} == expected
    assert {s.labels["repository"] for s in requests.samples} == {"acme/shop"}
    (group,) = _groups(stack)
    assert _series(group, "ci_perf_requests_total") == expected
    assert group["labels"]["repository"] == "acme/shop"


def test_an_unreachable_pushgateway_warns_and_the_run_still_passes(tmp_path: Path, demo: DemoService) -> None:
    nowhere = f"http://127.0.0.1:{free_port()}"
    config = write(tmp_path / "ci-perf.yml", CONFIG.format(url=demo.url, pushgateway=nowhere))
    done = _ci_perf(config, tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    assert f"ci-perf: warning: metrics not pushed to the Pushgateway at {nowhere}: " in done.stdout
    notes = [line for line in (tmp_path / "out" / "report.md").read_text().splitlines() if "Pushgateway" in line]
    assert len(notes) == 1
    assert "metrics not pushed to the Pushgateway at " in notes[0]
    assert nowhere.rsplit(":", 1)[1] in notes[0]  # the report escapes the URL (no live link)
    assert (tmp_path / "out" / "metrics.prom").read_text(encoding="utf-8").endswith("# EOF\n")
