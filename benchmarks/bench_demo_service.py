"""What the demo service's /metrics instrumentation costs it (issue 14, item 6).

The demo service is a load target: its own cost per request bounds the load a test can put through it.
This compares the CPU time (user + system of its process) per request of the service in the working
tree with the one at ``--baseline-rev`` (default: the last commit before the instrumentation), with
zero-latency knobs so that only the service's own work counts, in interleaved rounds (the median is
the figure; the machine is shared). The requests come from one keep-alive client, a third to each route.

    python benchmarks/bench_demo_service.py [--rounds 7] [--requests 10000] [--baseline-rev 5a9fdff]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
ROUTES = ("GET /api/products", "GET /api/products/{id}", "POST /api/orders")
OLD_ZERO = {route: {"latency_ms": 0, "jitter_ms": 0} for route in ROUTES}
NEW_ZERO = {route: {**knob, "query_ms": 0, "query_jitter_ms": 0, "external_ms": 0} for route, knob in OLD_ZERO.items()}


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _us_per_request(command: list[str], requests: int) -> float:
    service = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=ROOT)
    assert service.stdout is not None
    url = service.stdout.readline().rsplit("listening on ", 1)[1].strip()
    try:
        with httpx.Client(base_url=url) as client:
            for _ in range(200):  # warm up: imports, first connections
                client.get("/api/products")
            before = _cpu_seconds(service.pid)
            for index in range(requests):
                if index % 3 == 0:
                    client.get("/api/products")
                elif index % 3 == 1:
                    client.get("/api/products/7")
                else:
                    client.post("/api/orders", json={"productId": 1})
            return (_cpu_seconds(service.pid) - before) / requests * 1e6
    finally:
        service.terminate()
        service.wait()
        service.stdout.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--requests", type=int, default=10_000)
    parser.add_argument("--baseline-rev", default="5a9fdff")
    args = parser.parse_args()
    source = subprocess.run(
        ["git", "show", f"{args.baseline_rev}:ci_perf/demo/service.py"], cwd=ROOT, capture_output=True, check=True
    ).stdout
    with tempfile.TemporaryDirectory() as folder:
        old_service = Path(folder) / "service.py"
        old_service.write_bytes(source)
        old = [sys.executable, str(old_service), "--port", "0", "--knobs", json.dumps(OLD_ZERO)]
        new = [sys.executable, "-m", "ci_perf.demo.service", "--port", "0", "--knobs", json.dumps(NEW_ZERO)]
        results: dict[str, list[float]] = {"before": [], "with /metrics": []}
        for number in range(1, args.rounds + 1):
            results["before"].append(_us_per_request(old, args.requests))
            results["with /metrics"].append(_us_per_request(new, args.requests))
            print(f"round {number}: " + ", ".join(f"{k} {v[-1]:.0f} µs" for k, v in results.items()), flush=True)
    before, after = (statistics.median(v) for v in results.values())
    print(f"median CPU per request: before {before:.0f} µs, with /metrics {after:.0f} µs ({after / before - 1:+.0%})")


if __name__ == "__main__":
    main()
