"""Cost of the collector's per-request work, in a tight loop (no network, no Locust run).

* ``Collector.on_request`` called with the keyword arguments Locust passes (the in-flight token in the
  context, the target's URL), lognormal latencies and advancing timestamps (new windows as in a real run).
* The in-flight register's share of a request (``plugins/inflight.py``: what the wrapped
  ``request`` does besides calling Locust's): a ``Pending``, the token, the context, register and
  forget.

Run: ``make bench-listener``.
"""

from __future__ import annotations

import random
import statistics
import time
from collections.abc import Callable

from locust.env import Environment

from ci_perf.loadtest.plugins.collector import Collector
from ci_perf.loadtest.plugins.inflight import InFlight, Pending
from ci_perf.loadtest.plugins.recording import Hosts
from ci_perf.loadtest.protocol import HEAD, INFLIGHT_KEY, PluginSettings

N = 200_000
TARGET = "http://127.0.0.1:8000"


def median_us(run: Callable[[], None]) -> float:
    timings = []
    for _ in range(5):
        t0 = time.perf_counter()
        run()
        timings.append((time.perf_counter() - t0) / N * 1e6)
    return statistics.median(timings)


def listener() -> float:
    rng = random.Random(1)
    latencies = [rng.lognormvariate(-0.2, 0.5) for _ in range(N)]
    began = time.time()
    starts = [began + i * 0.0001 for i in range(N)]

    def run() -> None:
        collector = Collector(Environment(), settings=PluginSettings(window_s=1.0))
        collector.hosts = Hosts({HEAD: TARGET})
        record = collector.on_request
        for token, (latency, start) in enumerate(zip(latencies, starts, strict=True)):
            record(
                request_type="GET",
                name="/health",
                response_time=latency,
                response_length=2,
                response=None,
                context={INFLIGHT_KEY: token},
                exception=None,
                start_time=start,
                url=TARGET + "/health",
            )

    return median_us(run)


def register() -> float:
    session = object()

    def run() -> None:
        inflight = InFlight()
        for _ in range(N):
            context: dict[str, object] = {}
            pending = Pending(
                session=session, method="GET", url="/health", name=None, params=None, context=context,
                started=time.time(),
            )  # fmt: skip
            token = inflight.begin(pending)
            kwargs = {"context": {**context, INFLIGHT_KEY: token}}
            inflight.forget(token)
            assert kwargs

    return median_us(run)


def main() -> None:
    print(f"Collector.on_request: {listener():.2f} µs per call (median of 5 x {N:,})")
    print(f"in-flight register: {register():.2f} µs per request (median of 5 x {N:,})")


if __name__ == "__main__":
    main()
