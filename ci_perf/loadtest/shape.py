"""The load profile inside Locust: a ``LoadTestShape`` that follows ``ci_perf/profiles.py``.

The runner adds this file to ``-f`` for every profile with stages (smoke, stress, spike,
breakpoint, custom ``stages``) and passes ``CI_PERF_STAGES`` (JSON ``[{duration, target, jump}]``)
and ``CI_PERF_SPAWN_RATE``. After the last stage the shape holds its last target: the collector owns
the run clock and ends the run.

Breakpoint (``CI_PERF_BREAK_ON`` = ``{"error_rate_percent", "p95_latency_ms"}``): at the end of each
step the shape checks Locust's own numbers for that step (its p95 over the last seconds and the
step's failure ratio); the first step past a limit ends the run early through the collector, which
records where it broke. The capacity itself is computed afterwards from ci-perf's measurements.
Locust's p95 covers its last ~10 s and, with workers, lags by their ~3-s report interval: it decides
when to stop, never the reported numbers.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

import gevent
from locust import LoadTestShape

from ci_perf.profiles import Stage, step_index, target_at, users_at


class CiPerfShape(LoadTestShape):
    def __init__(self) -> None:
        super().__init__()
        self.plan = [Stage(**stage) for stage in json.loads(os.environ.get("CI_PERF_STAGES", "[]"))]
        self.spawn_rate = float(os.environ.get("CI_PERF_SPAWN_RATE", "10"))
        self.break_on: dict[str, float | None] | None = json.loads(os.environ.get("CI_PERF_BREAK_ON", "null"))
        self.step = -1
        self.step_counts = (0, 0)
        self.broken = False

    def tick(self) -> tuple[int, float] | None:
        elapsed = self.get_run_time()
        index = step_index(self.plan, elapsed)
        if index is not None and index != self.step:
            self._step_ended(self.step)
            self.step = index
            self._mark(index)
        if index is None and self.step >= 0:  # the plan is over: judge its last step too
            self._step_ended(self.step)
            self.step = -1
        wanted = users_at(self.plan, elapsed, spawn_rate=self.spawn_rate)
        if wanted is None:  # hold the last stage until the collector ends the run
            last = self.plan[-1].target if self.plan else 0.0
            return max(0, round(last)), self.spawn_rate
        return wanted

    def _collector(self) -> Any:
        return getattr(self.runner.environment, "ci_perf_collector", None) if self.runner else None

    def _mark(self, index: int) -> None:
        collector = self._collector()
        target = target_at(self.plan, self.get_run_time())
        if collector is not None:
            collector.steps.append({"start": time.time(), "target": target, "index": index})
        if self.runner is not None:
            total = self.runner.stats.total
            self.step_counts = (total.num_requests, total.num_failures)

    def _step_ended(self, index: int) -> None:
        if index < 0 or not self.break_on or self.broken or self.runner is None:
            return
        total = self.runner.stats.total
        requests = total.num_requests - self.step_counts[0]
        failures = total.num_failures - self.step_counts[1]
        reasons = []
        error_limit = self.break_on.get("error_rate_percent")
        if error_limit is not None and requests and 100 * failures / requests > error_limit:
            reasons.append(f"error rate {100 * failures / requests:.2f} % > {error_limit:g} %")
        p95_limit = self.break_on.get("p95_latency_ms")
        p95 = total.get_current_response_time_percentile(0.95)
        if p95_limit is not None and p95 is not None and p95 > p95_limit:
            reasons.append(f"p95 {p95:.0f} ms > {p95_limit:g} ms")
        collector = self._collector()
        if reasons and collector is not None:
            self.broken = True
            collector.broke = {"index": index, "reason": "; ".join(reasons), "at": time.time()}
            gevent.spawn(collector.finish)
