"""The Locust plugin that measures a run: it runs INSIDE Locust, never in ci-perf itself.

The runner starts Locust with ``-f plugins/collector.py,<locustfile>``. Every request
event is recorded into a DDSketch per (arm, endpoint, time window) with counts,
failures and the most frequent failure messages (capped). Windows lie on an
absolute grid (``floor(start_time / window_s)``) so that workers on one clock
line up without talking to each other.

It also owns the run clock, instead of Locust's ``-t``: after ``run_time``
seconds it stops the users gracefully (in-flight requests finish, up to
``--stop-timeout``), waits until every worker has sent its final windows, writes
the merged result, then quits Locust. With ``-t`` the master quits after a fixed
0.5 s and drops whatever the workers had not yet reported.

Its settings (``collect_out``, ``window_s``, ``run_time``, ``progress``) and the stdout markers the
runner reads are in ``loadtest/protocol.py``; the file it writes is a ``results.CollectedRun``.
"""

from __future__ import annotations

import math
import os
import time
from collections import Counter
from collections.abc import Iterable
from typing import Any

import gevent
import psutil
from locust import __version__ as locust_version
from locust import events
from locust.env import Environment
from locust.rpc import Message
from locust.runners import MasterRunner, Runner, WorkerRunner

from ci_perf import sketches
from ci_perf.loadtest.protocol import (
    ARM_KEY,
    COLLECTOR_ATTRIBUTE,
    HEAD,
    INTENDED_KEY,
    MESSAGE_TYPE,
    Arm,
    Marker,
    PluginSettings,
    Progress,
    WorkerReport,
    progress_line,
)
from ci_perf.results import BreakMark, CollectedEndpointWindow, CollectedRun, CpuSample, ErrorCount, StepMark

MAX_MESSAGES_PER_CELL = 10
MAX_MESSAGE_CHARS = 300
OTHER_MESSAGES = "(other failure messages)"
WORKER_FLUSH_S = 2.0
CPU_SAMPLE_S = 1.0
PROGRESS_S = 1.0
PROGRESS_SPAN_S = 5.0
_KEY_MULTIPLIER = sketches.KEY_MULTIPLIER
_SMALLEST_KEYED = sketches.SMALLEST_KEYED


def _failure_message(exception: BaseException | str) -> str:
    text = exception if isinstance(exception, str) else f"{type(exception).__name__}: {exception}"
    text = " ".join(str(text).split())
    return text[:MAX_MESSAGE_CHARS]


def _add_messages(into: Counter[str], messages: dict[str, int]) -> None:
    """Merge failure-message counts, keeping at most ``MAX_MESSAGES_PER_CELL`` distinct texts."""
    for message, count in messages.items():
        if message in into or len(into) < MAX_MESSAGES_PER_CELL:
            into[message] += count
        else:
            into[OTHER_MESSAGES] += count


class _Cell:
    """One endpoint in one window, while it is being recorded: sparse DDSketch key counts."""

    __slots__ = (
        "counts",
        "failures",
        "first_start",
        "high",
        "last_end",
        "low",
        "messages",
        "requests",
        "total",
        "zeros",
    )

    def __init__(self) -> None:
        self.counts: dict[int, int] = {}
        self.zeros = 0
        self.requests = 0
        self.failures = 0
        self.total = 0.0
        self.low = math.inf
        self.high = -math.inf
        self.messages: Counter[str] = Counter()
        self.first_start = math.inf
        self.last_end = 0.0

    def export(self, arm: Arm, endpoint: str, start: float) -> CollectedEndpointWindow:
        return CollectedEndpointWindow(
            arm=arm,
            endpoint=endpoint,
            start=start,
            requests=self.requests,
            failures=self.failures,
            latency=sketches.from_counts(self.counts, zeros=self.zeros, total=self.total, low=self.low, high=self.high),
            errors=_error_counts(self.messages),  # in the order seen: merging keeps the first ten
            first_start=self.first_start,
            last_end=self.last_end,
        )


def _error_counts(messages: dict[str, int]) -> list[ErrorCount]:
    return [ErrorCount(message=message, count=count) for message, count in messages.items()]


def _merge(have: CollectedEndpointWindow, part: CollectedEndpointWindow) -> CollectedEndpointWindow:
    """One cell from two sources (exact sums); the failure messages stay capped."""
    messages: Counter[str] = Counter({e.message: e.count for e in have.errors})
    _add_messages(messages, {e.message: e.count for e in part.errors})
    return have.model_copy(
        update={
            "requests": have.requests + part.requests,
            "failures": have.failures + part.failures,
            "latency": sketches.merge([have.latency, part.latency]),
            "errors": _error_counts(messages),
            "first_start": min(have.first_start, part.first_start),
            "last_end": max(have.last_end, part.last_end),
        }
    )


class _Merged:
    """Windows merged from every source (this process, every worker): exact sums."""

    def __init__(self) -> None:
        self.cells: dict[tuple[str, str, float], CollectedEndpointWindow] = {}
        self.cpu: list[CpuSample] = []

    def add(self, windows: Iterable[CollectedEndpointWindow]) -> None:
        for part in windows:
            key = (part.arm, part.endpoint, part.start)
            have = self.cells.get(key)
            self.cells[key] = part if have is None else _merge(have, part)

    def progress(self, *, now: float, started: float, run_time: float) -> Progress:
        recent_from = now - PROGRESS_SPAN_S
        total = failures = recent = 0
        recent_sketches = []
        for (_, _, start), cell in self.cells.items():
            total += cell.requests
            failures += cell.failures
            if start >= recent_from:
                recent += cell.requests
                recent_sketches.append(cell.latency)
        span = min(PROGRESS_SPAN_S, max(now - started, 1e-9))
        return Progress(
            elapsed=round(now - started, 1),
            total=run_time,
            requests=total,
            failures=failures,
            rps=round(recent / span, 1),
            p95_ms=sketches.quantile(sketches.merge(recent_sketches), 0.95),
        )

    def windows(self) -> list[CollectedEndpointWindow]:
        """Every cell, its failure messages most frequent first (the file's order)."""
        return [
            cell.model_copy(update={"errors": sorted(cell.errors, key=lambda e: (-e.count, e.message))})
            for cell in self.cells.values()
        ]


class Collector:
    """Records this process's requests; on the master (or alone) also merges and writes."""

    def __init__(self, environment: Environment, *, settings: PluginSettings) -> None:
        self.environment = environment
        self.settings = settings
        self.window_s = settings.window_s
        self.cells: dict[tuple[Arm, str, str, float], _Cell] = {}  # (arm, method, name, window index)
        self.cpu: list[CpuSample] = []
        self.merged = _Merged()
        self.process = psutil.Process()
        self.process.cpu_percent(None)
        self.peak_users = 0
        self.started_at: float | None = None
        self.workers: list[str] = []
        self.stop_timeout = float(environment.parsed_options.stop_timeout) if environment.parsed_options else 0.0
        self.finals_received = 0
        self.written = False
        self.steps: list[StepMark] = []  # shape.py: when each stage began
        self.broke: BreakMark | None = None  # shape.py: where a breakpoint run broke
        self.open_counts: Counter[str] = Counter()  # open_model.py: scheduled, late, dropped …

    # -- protocol.Recorder: what the other plugins call ----------------------------------------
    def mark_step(self, mark: StepMark) -> None:
        self.steps.append(mark)

    def stop_early(self, broke: BreakMark) -> None:
        self.broke = broke
        gevent.spawn(self.finish)

    # -- every process -------------------------------------------------------------------------
    def on_request(
        self,
        request_type: str,
        name: str,
        response_time: float | None,
        *,
        exception: BaseException | None = None,
        start_time: float | None = None,
        context: dict[str, Any] | None = None,
        **_: Any,
    ) -> None:
        """Record one request: the hot path (see docs/benchmarks.md; keep it lean)."""
        latency = response_time or 0.0
        began = start_time or time.time() - latency * 0.001
        arm = HEAD
        if context:  # duet.py tags the base deployment's requests; open_model.py the intended start
            arm = context.get(ARM_KEY, HEAD)
            intended = context.get(INTENDED_KEY)
            if intended is not None and intended < began:
                latency += (began - intended) * 1000.0  # measured from when it should have started
                began = intended
        key = (arm, request_type, name, began // self.window_s)
        cell = self.cells.get(key)
        if cell is None:
            cell = self.cells[key] = _Cell()
        if latency > _SMALLEST_KEYED:
            bucket = math.ceil(math.log(latency, 2) * _KEY_MULTIPLIER)  # noqa: FURB163 - = sketches.key_of, inlined
            counts = cell.counts
            counts[bucket] = counts.get(bucket, 0) + 1
        else:
            cell.zeros += 1
        cell.requests += 1
        cell.total += latency
        # plain comparisons, not min()/max(): a builtin call per request costs more (hot path)
        if latency < cell.low:  # noqa: PLR1730
            cell.low = latency
        if latency > cell.high:  # noqa: PLR1730
            cell.high = latency
        if exception is not None:
            cell.failures += 1
            _add_messages(cell.messages, {_failure_message(exception): 1})
        if began < cell.first_start:  # noqa: PLR1730
            cell.first_start = began
        end = began + latency * 0.001
        if end > cell.last_end:  # noqa: PLR1730
            cell.last_end = end

    def drain(self) -> list[CollectedEndpointWindow]:
        """Export and forget what this process recorded so far."""
        cells, self.cells = self.cells, {}
        return [
            cell.export(arm, f"{method} {name}", index * self.window_s)
            for (arm, method, name, index), cell in cells.items()
        ]

    def sample_cpu(self, label: str) -> None:
        runner = self.environment.runner
        if runner is not None and runner.user_count:
            self.peak_users = max(self.peak_users, runner.user_count)
            self.cpu.append(CpuSample(process=label, at=time.time(), percent=self.process.cpu_percent(None)))

    # -- the master, or the only process -------------------------------------------------------
    def print_progress(self) -> None:
        if self.started_at is None:
            return
        self.merged.add(self.drain())
        progress = self.merged.progress(now=time.time(), started=self.started_at, run_time=self.settings.run_time)
        print(progress_line(progress), flush=True)

    def start(self) -> None:
        """test_start: the run clock begins (once; a master may see test_start again)."""
        if self.started_at is not None:
            return
        self.started_at = time.time()
        runner = self.environment.runner
        if isinstance(runner, MasterRunner):
            self.workers = list(runner.clients.keys())
        print(Marker.STARTED, flush=True)
        if self.settings.run_time > 0:
            gevent.spawn_later(self.settings.run_time, self.finish)

    def finish(self) -> None:
        """Stop users gracefully, collect every worker's final windows, write, quit."""
        runner = self.environment.runner
        assert runner is not None
        if isinstance(runner, MasterRunner):
            # MasterRunner.stop() tells the workers to stop, then polls their user counts in
            # 1-s sleeps; the final windows tell us sooner that every worker is done.
            gevent.spawn(runner.stop)
        else:
            runner.stop()  # waits for in-flight requests, up to --stop-timeout
        deadline = time.monotonic() + self.stop_timeout + 30
        while self.finals_received < len(self.workers) and time.monotonic() < deadline:
            gevent.sleep(0.02)
        self.write()
        if isinstance(runner, MasterRunner):
            # A stopped worker leaves the master's client list until it reports ready again
            # (after --stop-timeout), so Locust's quit() would not reach it: tell each one.
            for worker in self.workers:
                runner.server.send_to_client(Message("quit", None, worker))
        runner.quit()

    def report(self, *, final: bool = False) -> WorkerReport:
        """A worker's windows, CPU samples and open-model counters since its last report."""
        report = WorkerReport(windows=self.drain(), cpu=self.cpu, open=dict(self.open_counts), final=final)
        self.cpu = []
        self.open_counts = Counter()
        return report

    def on_worker_message(self, environment: Environment, msg: Any, **_: Any) -> None:  # noqa: ARG002 - Locust's signature
        report = WorkerReport.model_validate(msg.data)
        self.merged.add(report.windows)
        self.merged.cpu.extend(report.cpu)
        self.open_counts.update(report.open)
        if report.final:
            self.finals_received += 1

    def write(self) -> None:
        out = self.settings.collect_out
        if self.written or out is None:
            return
        self.merged.add(self.drain())
        self.merged.cpu.extend(self.cpu)
        runner = self.environment.runner
        warnings = []
        if getattr(runner, "cpu_warning_emitted", False) or getattr(runner, "worker_cpu_warning_emitted", False):
            warnings.append("Locust reported a load-generator CPU above 90%")
        collected = CollectedRun(
            locust_version=locust_version,
            window_s=self.window_s,
            windows=self.merged.windows(),
            cpu=self.merged.cpu,
            cpu_warnings=warnings,
            peak_users=self.peak_users,
            started_at=self.started_at,
            steps=self.steps,
            broke=self.broke,
            open_model=dict(self.open_counts) if self.open_counts else None,
        )
        tmp = out.with_suffix(".tmp")
        tmp.write_text(collected.model_dump_json(), encoding="utf-8")
        tmp.replace(out)
        self.written = True
        print(Marker.WRITTEN, flush=True)


def _every(seconds: float, action: Any) -> None:
    while True:
        gevent.sleep(seconds)
        action()


_collector: Collector | None = None


@events.init.add_listener
def _on_init(environment: Environment, **_: Any) -> None:
    global _collector  # noqa: PLW0603 - Locust plugins hook module-level events; one collector per process
    collector = _collector = Collector(environment, settings=PluginSettings.from_env(os.environ))
    setattr(environment, COLLECTOR_ATTRIBUTE, collector)  # protocol.recorder_of: for shape.py and open_model.py
    environment.events.request.add_listener(collector.on_request)
    runner = environment.runner
    if isinstance(runner, WorkerRunner):
        _as_worker(collector, runner)
    else:
        _as_master(collector, runner)


def _as_worker(collector: Collector, runner: WorkerRunner) -> None:
    """A worker records and reports to the master every few seconds, and a last time at test_stop."""
    label = f"worker-{os.getpid()}"

    def send(final: bool = False) -> None:
        runner.send_message(MESSAGE_TYPE, collector.report(final=final).model_dump())

    gevent.spawn(_every, WORKER_FLUSH_S, send)
    gevent.spawn(_every, CPU_SAMPLE_S, lambda: collector.sample_cpu(label))
    collector.environment.events.test_stop.add_listener(lambda **_: send(final=True))


def _as_master(collector: Collector, runner: Runner | None) -> None:
    """The master, or the only process: merges, prints progress, owns the run clock, writes the file."""
    if isinstance(runner, MasterRunner):
        runner.register_message(MESSAGE_TYPE, collector.on_worker_message)
    label = "master" if isinstance(runner, MasterRunner) else "locust"
    gevent.spawn(_every, CPU_SAMPLE_S, lambda: collector.sample_cpu(label))
    if collector.settings.progress:
        gevent.spawn(_every, PROGRESS_S, collector.print_progress)
    collector.environment.events.test_start.add_listener(lambda **_: collector.start())
    collector.environment.events.quitting.add_listener(lambda **_: collector.write())
