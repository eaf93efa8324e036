"""Cost of the collector's request listener per call, in a tight loop (no network, no Locust run).

Calls ``Collector.on_request`` with the keyword arguments Locust passes, lognormal latencies and
advancing timestamps (new windows as in a real run). Run: ``make bench-listener``.
"""

from __future__ import annotations

import random
import statistics
import time

from locust.env import Environment

from ci_perf.loadtest.plugins.collector import Collector
from ci_perf.loadtest.protocol import PluginSettings

N = 200_000


def main() -> None:
    rng = random.Random(1)
    latencies = [rng.lognormvariate(-0.2, 0.5) for _ in range(N)]
    began = time.time()
    starts = [began + i * 0.0001 for i in range(N)]
    timings = []
    for _ in range(5):
        collector = Collector(Environment(), settings=PluginSettings(window_s=1.0))
        record = collector.on_request
        t0 = time.perf_counter()
        for latency, start in zip(latencies, starts, strict=True):
            record(
                request_type="GET",
                name="/health",
                response_time=latency,
                response_length=2,
                response=None,
                context={},
                exception=None,
                start_time=start,
                url="http://127.0.0.1/health",
            )
        timings.append((time.perf_counter() - t0) / N * 1e6)
    print(f"Collector.on_request: {statistics.median(timings):.2f} µs per call (median of 5 x {N:,})")


if __name__ == "__main__":
    main()
