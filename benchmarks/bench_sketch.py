"""Micro-benchmark: which sketch records a request fastest, at ≤ 1 % relative error?

Compares DDSketch (``ddsketch``, 1 % relative accuracy) with HdrHistogram
(``hdrhistogram``, 2 significant digits = ≤ 1 % error, microsecond integers)
on what the collector does per request (add one latency), per window (export,
merge) and on memory. Run: ``make bench`` or ``.venv/bin/python benchmarks/bench_sketch.py``.
"""

from __future__ import annotations

import math
import random
import statistics
import sys
import time
import tracemalloc

from ddsketch import DDSketch
from hdrh.histogram import HdrHistogram

from ci_perf import sketches

N = 200_000


def latencies(n: int, seed: int = 1) -> list[float]:
    rng = random.Random(seed)
    return [rng.lognormvariate(3.0, 0.6) for _ in range(n)]  # ms, median ~20 ms, heavy-ish tail


def per_add_ns(add: object, values: list[float]) -> float:
    start = time.perf_counter_ns()
    for v in values:
        add(v)  # type: ignore[operator]
    return (time.perf_counter_ns() - start) / len(values)


def main() -> None:
    values = latencies(N)
    exact = sorted(values)
    rows = []

    def inline_add(counts: dict[int, int]) -> object:
        # what the collector does per request: DDSketch's key, counted in a dict
        multiplier = sketches.KEY_MULTIPLIER

        def add(value: float) -> None:
            key = math.ceil(math.log(value, 2) * multiplier)  # noqa: FURB163 - as the collector
            counts[key] = counts.get(key, 0) + 1

        return add

    for name, make, add_of, quantile_of in (
        ("ddsketch 1%", lambda: DDSketch(0.01), lambda s: s.add, lambda s, q: s.get_quantile_value(q)),
        (
            "hdrhistogram 2 digits (us)",
            lambda: HdrHistogram(1, 3_600_000_000, 2),
            lambda s: lambda v: s.record_value(int(v * 1000)),
            lambda s, q: s.get_value_at_percentile(q * 100) / 1000,
        ),
        (
            "ddsketch key, inline (collector)",
            dict,
            inline_add,
            lambda s, q: sketches.quantile(sketches.from_counts(s, zeros=0, total=0.0, low=0.0, high=1e9), q),
        ),
    ):
        timings = []
        for _ in range(5):
            sketch = make()
            timings.append(per_add_ns(add_of(sketch), values))
        tracemalloc.start()
        one = make()
        mem = tracemalloc.get_traced_memory()[0]
        tracemalloc.stop()
        errors = []
        for q in (0.5, 0.9, 0.95, 0.99, 0.999):
            true = exact[int(q * (N - 1))]
            errors.append(abs(quantile_of(sketch, q) - true) / true)
        rows.append((name, statistics.median(timings), mem, max(errors)))
        del one
    print(f"{'sketch':30} {'ns/add':>8} {'empty bytes':>12} {'max rel err':>12}")
    for name, ns, mem, err in rows:
        print(f"{name:30} {ns:8.0f} {mem:12d} {err * 100:11.2f}%")
    print(f"python {sys.version.split()[0]}, {N} lognormal latencies, median of 5 passes")


if __name__ == "__main__":
    main()
