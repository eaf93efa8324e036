"""The load profile inside Locust: a ``LoadTestShape`` that follows ``ci_perf.profiles``.

The runner adds this file to ``-f`` for every profile with stages (smoke, stress, spike,
breakpoint, custom ``stages``) and passes the stages and the spawn rate (``protocol.PluginSettings``:
``stages``, ``spawn_rate``). After the last stage the shape holds its last target: the collector owns
the run clock and ends the run.

Breakpoint (``break_on``): at the end of each step the shape checks Locust's own numbers for that
step (its p95 over the last seconds and the step's failure ratio) with ``profiles.limits_crossed``;
the first step past a limit ends the run early through the collector, which records where it broke.
The capacity itself is computed afterwards from ci-perf's measurements with the same rule. Locust's
p95 covers its last ~10 s and, with workers, lags by their ~3-s report interval: it decides when to
stop, never the reported numbers.
"""

from __future__ import annotations

import os
import time

from locust import LoadTestShape

from ci_perf.loadtest.protocol import PluginSettings, Recorder, recorder_of
from ci_perf.profiles import limits_crossed, step_index, target_at, users_at
from ci_perf.results import BreakMark, StepMark


class CiPerfShape(LoadTestShape):
    ci_perf = True  # guard.py tells it from a shape of the locustfile's own

    def __init__(self) -> None:
        super().__init__()
        settings = PluginSettings.from_env(os.environ)
        self.plan = settings.stages or []
        self.spawn_rate = settings.spawn_rate
        self.break_on = settings.break_on
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

    def _recorder(self) -> Recorder | None:
        return recorder_of(self.runner.environment) if self.runner else None

    def _mark(self, index: int) -> None:
        recorder = self._recorder()
        target = target_at(self.plan, self.get_run_time())
        if recorder is not None:
            recorder.mark_step(StepMark(start=time.time(), target=target, index=index))
        if self.runner is not None:
            total = self.runner.stats.total
            self.step_counts = (total.num_requests, total.num_failures)

    def _step_ended(self, index: int) -> None:
        if index < 0 or not self.break_on or self.broken or self.runner is None:
            return
        total = self.runner.stats.total
        requests = total.num_requests - self.step_counts[0]
        failures = total.num_failures - self.step_counts[1]
        crossed = limits_crossed(
            self.break_on,
            p95_ms=total.get_current_response_time_percentile(0.95),
            error_rate_percent=100 * failures / requests if requests else None,
        )
        recorder = self._recorder()
        if crossed and recorder is not None:
            self.broken = True
            recorder.stop_early(BreakMark(index=index, reason="; ".join(crossed), at=time.time()))
