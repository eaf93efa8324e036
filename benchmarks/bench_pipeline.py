"""Analysis + render time and peak RSS for large synthetic results (200 endpoints).

Builds a synthetic collector output with 1 M and 10 M requests over 200
endpoints and 70 one-second windows (10 s warm-up), then times what runs after
Locust: summarize → compare with 10 baseline runs → budget → report → render
markdown, terminal and report.json. Each size runs in a fresh process so that
its peak RSS is its own. Run: ``make bench-pipeline``.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

import numpy as np

from ci_perf.analysis.judge import judge
from ci_perf.analysis.summarize import summarize_run
from ci_perf.config import Config, EndpointBudget, LoadSettings, PerformanceBudget
from ci_perf.report import render_markdown, render_terminal
from ci_perf.results import CollectedEndpointWindow, CollectedRun, History, RunResult
from ci_perf.sketches import _MAPPING, Sketch

ENDPOINTS = 200
WINDOWS = 70
LOAD = LoadSettings(users=50, duration=70, warmup=10)


def synthetic(requests: int, seed: int) -> CollectedRun:
    rng = np.random.default_rng(seed)
    per_cell = requests // (ENDPOINTS * WINDOWS)
    multiplier = _MAPPING._multiplier  # noqa: SLF001 - the same key function as the collector's
    windows = []
    for e in range(ENDPOINTS):
        median = 5 + e % 50
        for w in range(WINDOWS):
            values = rng.lognormal(np.log(median), 0.5, per_cell)
            keys = np.ceil(np.log2(values) * multiplier).astype(np.int64)
            low = int(keys.min())
            bins = np.bincount(keys - low)
            start = 1_000.0 + w
            windows.append(
                CollectedEndpointWindow(
                    endpoint=f"GET /api/resource/{e}",
                    start=start,
                    requests=per_cell,
                    failures=0,
                    latency=Sketch(
                        offset=low,
                        bins=bins.tolist(),
                        count=per_cell,
                        sum=float(values.sum()),
                        min=float(values.min()),
                        max=float(values.max()),
                    ),
                    first_start=start,
                    last_end=start + 1,
                )
            )
    return CollectedRun(locust_version="bench", window_s=1.0, windows=windows, peak_users=50)


def measure(requests: int) -> dict[str, float]:
    config = Config(
        endpoints=["GET /"],  # type: ignore[list-item]
        performance_budget=PerformanceBudget(api_endpoints=EndpointBudget(p95_latency_ms=40, p99_latency_ms=80)),
    )
    history: list[RunResult] = [
        summarize_run(synthetic(requests, seed), load=LOAD, target="http://x", tool_version="bench")
        for seed in range(1, 11)
    ]
    collected = synthetic(requests, 99)
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    began = time.perf_counter()
    result = summarize_run(collected, load=LOAD, target="http://x", tool_version="bench")
    report = judge(config.gate, result, history=History(runs=history)).report
    markdown = render_markdown(report)
    render_terminal(report)
    report.model_dump_json()
    elapsed = time.perf_counter() - began
    rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {
        "requests": float(result.aggregate.requests + sum(w.requests for w in collected.windows if w.start < 1_010)),
        "seconds": elapsed,
        "rss_before_mb": rss_before,
        "rss_peak_mb": rss_after,
        "markdown_chars": float(len(markdown)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure(args.one)))
        return
    print(f"{'requests':>12} {'analysis+render':>16} {'peak RSS':>10} {'RSS before':>11} {'comment chars':>14}")
    for requests in (1_000_000, 10_000_000):
        done = subprocess.run(
            [sys.executable, __file__, "--one", str(requests)], capture_output=True, text=True, check=True
        )
        row = json.loads(done.stdout)
        print(
            f"{row['requests']:12,.0f} {row['seconds']:15.3f}s {row['rss_peak_mb']:8.0f}MB "
            f"{row['rss_before_mb']:9.0f}MB {row['markdown_chars']:14,.0f}"
        )
    print(f"{ENDPOINTS} endpoints x {WINDOWS} one-second windows, compared with 10 baseline runs")


if __name__ == "__main__":
    main()
