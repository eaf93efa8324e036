"""What server-side budgets add to a run's wall time (issue 14; goal ≤ 1 s).

A real Prometheus (the Debian package, tests/support/prometheus.py) scrapes the demo service every second.
Two measurements:

* ``phases``: in-process, the check before the load (``check_queries``) and the measurement after it
  (``measure_server``) with every default rule of ``database`` and ``external_services`` plus the
  request count: 9 instant queries before, 17 instant and range queries after, concurrent.
* ``run``: the real ``ci-perf run`` (zero-code, 5 users, ``--duration``) with and without
  ``server_metrics``, alternated, median of ``--repeats``.

Run: ``make bench-server`` (``--repeats``, ``--duration``).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the Prometheus and demo fixtures live with the tests

from ci_perf.config import PerformanceBudget, ServerMetricsSettings  # noqa: E402
from ci_perf.servermetrics import check_queries, measure_server  # noqa: E402
from tests.conftest import start_demo_service  # noqa: E402
from tests.support.prometheus import prometheus_stack  # noqa: E402

BUDGET = {
    "database": {"query_p95_ms": 50, "query_p99_ms": 200, "connection_pool_utilization": 70,
                 "slow_query_threshold_ms": 100},
    "external_services": {"p95_latency_ms": 300, "timeout_ms": 5000, "retry_count": 3,
                          "circuit_breaker_threshold": 50},
}  # fmt: skip


def phases(url: str, repeats: int) -> None:
    settings = ServerMetricsSettings(prometheus=url)
    budget = PerformanceBudget.model_validate(BUDGET)
    before, after = [], []
    for _ in range(repeats):
        started = time.perf_counter()
        check_queries(settings, budget, environ={}, now=time.time())
        before.append(time.perf_counter() - started)
        end = time.time()
        started = time.perf_counter()
        measure_server(settings, budget, start=end - 60, end=end, environ={})
        after.append(time.perf_counter() - started)
    print("| phase | median ms | min | max |\n|---|--:|--:|--:|")
    for name, times in (("check before the load", before), ("measure after the run", after)):
        ms = [t * 1000 for t in times]
        print(f"| {name} | {statistics.median(ms):.0f} | {min(ms):.0f} | {max(ms):.0f} |")


def run_once(directory: Path, target: str, duration: str, server_metrics: str | None) -> float:
    budget = "{database: {query_p95_ms: 50, connection_pool_utilization: 70}}"
    text = (
        f"target: {target}\nendpoints: [GET /api/products]\n"
        f"load: {{users: 5, spawn_rate: 10, duration: {duration}, warmup: 1s}}\nperformance_budget: {budget}\n"
    )
    if server_metrics:
        text += f"server_metrics: {server_metrics}\n"
    config = directory / "ci-perf.yml"
    config.write_text(text)
    command = [str(ROOT / ".venv/bin/ci-perf"), "run", "--config", str(config), "--out", str(directory / "out")]
    started = time.perf_counter()
    subprocess.run(command, cwd=directory, capture_output=True, check=False, timeout=300)
    return time.perf_counter() - started


def runs(url: str, target: str, *, repeats: int, duration: str) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        walls: dict[str, list[float]] = {"without": [], "with": []}
        for _ in range(repeats):
            walls["without"].append(run_once(Path(scratch), target, duration, None))
            walls["with"].append(run_once(Path(scratch), target, duration, f"{{prometheus: {url}}}"))
    print("\n| ci-perf run | median s | min | max |\n|---|--:|--:|--:|")
    for name, times in walls.items():
        print(f"| {name} server_metrics | {statistics.median(times):.2f} | {min(times):.2f} | {max(times):.2f} |")
    added = statistics.median(walls["with"]) - statistics.median(walls["without"])
    print(f"\nadded by server_metrics (difference of medians): {added:.2f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--duration", default="5s")
    args = parser.parse_args()
    demo = start_demo_service({"GET /api/products": {"latency_ms": 5, "jitter_ms": 1}})
    try:
        with tempfile.TemporaryDirectory() as scratch:
            os_dir = Path(scratch)
            with prometheus_stack(os_dir, targets=[demo.url.removeprefix("http://")]) as stack:
                stack.wait_for("db_pool_connections_max")
                phases(stack.url, repeats=20)
                runs(stack.url, demo.url, repeats=args.repeats, duration=args.duration)
    finally:
        demo.stop()


if __name__ == "__main__":
    main()
