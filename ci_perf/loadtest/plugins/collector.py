"""The Locust plugin that measures a run: it runs INSIDE Locust, never in ci-perf itself.

The runner starts Locust with ``-f plugins/collector.py,<locustfile>``. Every request
event is recorded into a DDSketch per (arm, endpoint, host, time window) with counts,
failures and the most frequent failure messages (capped; ``recording.py``). Windows lie on an
absolute grid (``floor(start_time / window_s)``) so that workers on one clock
line up without talking to each other. Requests to a host other than the target are kept
under their host; unhandled task exceptions are counted by type, message and locustfile line.

It also owns the run clock, instead of Locust's ``-t``. After ``run_time`` seconds the measured
window ends (``Collector.close``): every request still in flight (``inflight.py``) is recorded with its
wait so far (``analysis.summarize`` decides which of them are unfinished: failures, the wait a latency
lower bound), nothing more is sent or recorded, and the users are stopped at once — no waiting for
think times or ``--stop-timeout``. A master tells each worker to do
the same (``protocol.CloseOrder``), waits for their final reports, writes the merged result, then quits
Locust. (With ``-t`` the master quits after a fixed 0.5 s and drops whatever the workers had not yet
reported.) When Locust stops by itself (a locustfile's shape ended) the window ends the same way.

Its settings (``collect_out``, ``window_s``, ``run_time``, ``progress``) and the stdout markers the
runner reads are in ``loadtest/protocol.py``; the file it writes is a ``results.CollectedRun``.
"""

from __future__ import annotations

import inspect
import math
import os
import time
import traceback
from collections import Counter
from pathlib import Path
from types import TracebackType
from typing import Any

import gevent
import psutil
from locust import __version__ as locust_version
from locust import events
from locust.env import Environment
from locust.rpc import Message
from locust.runners import MasterRunner, Runner, WorkerRunner

from ci_perf import sketches
from ci_perf.loadtest.plugins.inflight import InFlight, Pending, install
from ci_perf.loadtest.plugins.recording import (
    Cell,
    ExceptionTally,
    Hosts,
    Merged,
    add_messages,
    exception_key,
    failure_message,
)
from ci_perf.loadtest.protocol import (
    ARM_KEY,
    BASE,
    CLOSE_TYPE,
    COLLECTOR_ATTRIBUTE,
    HEAD,
    INFLIGHT_KEY,
    INTENDED_KEY,
    MESSAGE_TYPE,
    Arm,
    CloseOrder,
    Marker,
    PluginSettings,
    WorkerReport,
    progress_line,
)
from ci_perf.results import BreakMark, CollectedEndpointWindow, CollectedRun, CpuSample, StepMark

WORKER_FLUSH_S = 2.0
CPU_SAMPLE_S = 1.0
PROGRESS_S = 1.0
FINALS_WAIT_S = 10.0  # workers answer a CloseOrder at once; one that does not is left out after this
PLUGINS = Path(__file__).parent
_KEY_MULTIPLIER = sketches.KEY_MULTIPLIER
_SMALLEST_KEYED = sketches.SMALLEST_KEYED

CellKey = tuple[Arm, str, str, str | None, float]  # (arm, method, name, other host, window index)


class Collector:
    """Records this process's requests; on the master (or alone) also merges and writes."""

    def __init__(self, environment: Environment, *, settings: PluginSettings) -> None:
        self.environment = environment
        self.settings = settings
        self.window_s = settings.window_s
        self.cells: dict[CellKey, Cell] = {}
        self.cpu: list[CpuSample] = []
        self.merged = Merged()
        self.process = psutil.Process()
        self.process.cpu_percent(None)
        self.peak_users = 0
        self.started_at: float | None = None
        self.workers: list[str] = []
        self.finals: set[str] = set()
        self.inflight = InFlight()
        self.pending = self.inflight.pending  # the hot path forgets answered requests directly
        self.hosts = Hosts({})
        self.exceptions = ExceptionTally()
        self.closed = False
        self.stopped_at: float | None = None
        self.written = False
        self.finishing = False
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
        url: str | None = None,
        **_: Any,
    ) -> None:
        """Record one request: the hot path (see docs/benchmarks.md; keep it lean)."""
        if self.closed:  # the measured window ended; what was in flight is already counted as unfinished
            return
        latency = response_time or 0.0
        began = start_time or time.time() - latency * 0.001
        arm = HEAD
        if context:  # inflight.py: its token; duet.py: the arm; open_model.py: the intended start
            token = context.get(INFLIGHT_KEY)
            if token is not None:
                self.pending.pop(token, None)  # = self.inflight.forget(token), inlined
            arm = context.get(ARM_KEY, HEAD)
            intended = context.get(INTENDED_KEY)
            if intended is not None and intended < began:
                latency += (began - intended) * 1000.0  # measured from when it should have started
                began = intended
        host = self.hosts.other(url, arm) if url else None
        cell = self._cell((arm, request_type, name, host, began // self.window_s))
        self._add(cell, latency, began)
        if exception is not None:
            cell.failures += 1
            add_messages(cell.messages, {failure_message(exception): 1})

    def _cell(self, key: CellKey) -> Cell:
        cell = self.cells.get(key)
        if cell is None:
            cell = self.cells[key] = Cell()
        return cell

    @staticmethod
    def _add(cell: Cell, latency: float, began: float) -> None:
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
        if began < cell.first_start:  # noqa: PLR1730
            cell.first_start = began
        end = began + latency * 0.001
        if end > cell.last_end:  # noqa: PLR1730
            cell.last_end = end

    def on_user_error(self, user_instance: Any, exception: BaseException, tb: TracebackType | None, **_: Any) -> None:
        """An unhandled exception in a user's task: counted by type, message and locustfile line.

        In duet mode the base arm's twin runs the same code: only the head's exceptions are counted, once.
        """
        if self.closed or _arm_of(user_instance) != HEAD:
            return
        frames = [(frame.f_code.co_filename, line) for frame, line in traceback.walk_tb(tb)]
        self.exceptions.add(exception_key(exception, frames, _user_locustfiles(self.environment)))

    def close(self, at: float | None = None) -> None:
        """The measured window ends (``at``: the master's time, else now): cut off what is in flight.

        Each request still in flight is recorded with its wait so far, in the window where the run ended.
        From here on nothing is recorded and no new request is sent; Locust's own stop, whenever it
        comes, stops the users at once.
        """
        if self.closed:
            return
        now = time.time()
        self.stopped_at = at if at is not None else now
        self.closed = True
        self.environment.stop_timeout = 0  # Locust reads it when it stops the users
        self._sample_users()
        for pending in self.inflight.close():
            self._cut_off(pending, now=now)

    def _cut_off(self, pending: Pending, *, now: float) -> None:
        context = pending.full_context()
        arm = context.get(ARM_KEY, HEAD)
        began = pending.started
        latency = (now - began) * 1000.0
        intended = context.get(INTENDED_KEY)
        if intended is not None and intended < began:
            latency += (began - intended) * 1000.0
            began = intended
        ended = max((self.stopped_at or now) - 1e-6, began)  # in the window where the run ended
        host = self.hosts.other(pending.full_url(), arm)
        cell = self._cell((arm, pending.request_type(), pending.report_name(), host, ended // self.window_s))
        cell.in_flight.append(latency)
        cell.first_start = min(cell.first_start, began)
        cell.last_end = max(cell.last_end, now)

    def drain(self) -> list[CollectedEndpointWindow]:
        """Export and forget what this process recorded so far."""
        cells, self.cells = self.cells, {}
        return [
            cell.export(arm, f"{method} {name}", index * self.window_s, host)
            for (arm, method, name, host, index), cell in cells.items()
        ]

    def _sample_users(self) -> None:
        runner = self.environment.runner
        if runner is not None:
            self.peak_users = max(self.peak_users, runner.user_count)

    def sample_cpu(self, label: str) -> None:
        runner = self.environment.runner
        if runner is not None and runner.user_count and not self.closed:
            self._sample_users()
            self.cpu.append(CpuSample(process=label, at=time.time(), percent=self.process.cpu_percent(None)))

    def start(self) -> None:
        """test_start, in every process: the targets are known (a worker learns ``--host`` only now)."""
        self.hosts = Hosts({HEAD: self.environment.host, BASE: self.settings.baseline_target})

    # -- the master, or the only process -------------------------------------------------------
    def print_progress(self) -> None:
        if self.started_at is None or self.closed:
            return
        self.merged.add(self.drain())
        progress = self.merged.progress(now=time.time(), started=self.started_at, run_time=self.settings.run_time)
        print(progress_line(progress), flush=True)

    def start_clock(self) -> None:
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

    def end_window(self) -> None:
        """Close the measured window here and, on a master, in every worker."""
        if self.closed:
            return
        self.close()
        runner = self.environment.runner
        if isinstance(runner, MasterRunner):
            order = CloseOrder(at=self.stopped_at or time.time()).model_dump()
            for worker in self.workers:
                runner.server.send_to_client(Message(CLOSE_TYPE, order, worker))

    def finish(self) -> None:
        """The run is over: close the window, stop the users at once, collect every worker's final report,
        write, quit."""
        if self.finishing:  # the clock ran out while a breakpoint ended the run, or the other way round
            return
        self.finishing = True
        self.end_window()
        runner = self.environment.runner
        assert runner is not None
        if not isinstance(runner, MasterRunner):
            runner.stop()  # kills the users (stop_timeout is 0 now); test_stop lets the open model count
        self.await_finals()
        self.write()
        if isinstance(runner, MasterRunner):
            # A stopped worker leaves the master's client list until it reports ready again, so
            # Locust's quit() would not reach it: tell each one.
            for worker in self.workers:
                runner.server.send_to_client(Message("quit", None, worker))
        runner.quit()

    def await_finals(self) -> None:
        deadline = time.monotonic() + FINALS_WAIT_S
        while not self.finals.issuperset(self.workers) and time.monotonic() < deadline:
            gevent.sleep(0.01)

    def report(self, *, final: bool = False) -> WorkerReport:
        """A worker's windows, CPU samples, open-model counters and exceptions since its last report."""
        report = WorkerReport(
            windows=self.drain(),
            cpu=self.cpu,
            open=dict(self.open_counts),
            exceptions=self.exceptions.drain(),
            final=final,
        )
        self.cpu = []
        self.open_counts = Counter()
        return report

    def on_worker_message(self, environment: Environment, msg: Any, **_: Any) -> None:  # noqa: ARG002 - Locust's signature
        report = WorkerReport.model_validate(msg.data)
        self.merged.add(report.windows)
        self.merged.cpu.extend(report.cpu)
        self.merged.exceptions.add_all(report.exceptions)
        self.open_counts.update(report.open)
        if report.final:
            self.finals.add(msg.node_id)

    def write(self) -> None:
        out = self.settings.collect_out
        if self.written or out is None:
            return
        self.close()  # Locust quitting by itself: the window ends here
        self.merged.add(self.drain())
        self.merged.cpu.extend(self.cpu)
        self.merged.exceptions.add_all(self.exceptions.drain())
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
            stopped_at=self.stopped_at,
            steps=self.steps,
            broke=self.broke,
            open_model=dict(self.open_counts) if self.open_counts else None,
            exceptions=self.merged.exceptions.export(),
        )
        tmp = out.with_suffix(".tmp")
        tmp.write_text(collected.model_dump_json(), encoding="utf-8")
        tmp.replace(out)
        self.written = True
        print(Marker.WRITTEN, flush=True)


def _user_locustfiles(environment: Environment) -> set[Path]:
    """The user's locustfiles: the ``-f`` files and the files of the User classes, not ci-perf's plugins."""
    found = getattr(environment, "_ci_perf_locustfiles", None)
    if found is None:
        raw = getattr(environment.parsed_options, "locustfile", None) or ""
        names = raw.split(",") if isinstance(raw, str) else list(raw)
        paths = {Path(name.strip()).resolve() for name in names if name.strip()}
        for user_class in environment.user_classes:
            try:
                paths.add(Path(inspect.getfile(user_class)).resolve())
            except (TypeError, OSError):
                continue
        found = {path for path in paths if path.parent != PLUGINS}
        environment._ci_perf_locustfiles = found  # type: ignore[attr-defined] # noqa: SLF001 - worked out once
    return found


def _every(seconds: float, action: Any) -> None:
    while True:
        gevent.sleep(seconds)
        action()


def _arm_of(user_instance: Any) -> Arm:
    """The arm a user (or, for a TaskSet's task, the TaskSet's user) loads: duet's twins say base."""
    user = getattr(user_instance, "user", user_instance)  # Locust passes the TaskSet for a TaskSet's task
    context = getattr(user, "context", None)
    arm = context().get(ARM_KEY, HEAD) if callable(context) else HEAD
    return BASE if arm == BASE else HEAD


_collector: Collector | None = None


@events.init.add_listener
def _on_init(environment: Environment, **_: Any) -> None:
    global _collector  # noqa: PLW0603 - Locust plugins hook module-level events; one collector per process
    collector = _collector = Collector(environment, settings=PluginSettings.from_env(os.environ))
    setattr(environment, COLLECTOR_ATTRIBUTE, collector)  # protocol.recorder_of: for shape.py and open_model.py
    install(collector.inflight)
    environment.events.request.add_listener(collector.on_request)
    environment.events.user_error.add_listener(collector.on_user_error)
    environment.events.spawning_complete.add_listener(lambda **_: collector._sample_users())  # noqa: SLF001
    environment.events.test_start.add_listener(lambda **_: collector.start())
    runner = environment.runner
    if isinstance(runner, WorkerRunner):
        _as_worker(collector, runner)
    else:
        _as_master(collector, runner)


def _as_worker(collector: Collector, runner: WorkerRunner) -> None:
    """A worker records and reports to the master every few seconds, and a last time when the window closes."""
    label = f"worker-{os.getpid()}"
    sent_final = False

    def send(final: bool = False) -> None:
        nonlocal sent_final
        if sent_final:
            return
        sent_final = final
        runner.send_message(MESSAGE_TYPE, collector.report(final=final).model_dump())

    def on_close(msg: Any, **_: Any) -> None:
        collector.close(at=CloseOrder.model_validate(msg.data).at)
        runner.stop()  # kills the users at once; test_stop sends the final report

    runner.register_message(CLOSE_TYPE, on_close)
    gevent.spawn(_every, WORKER_FLUSH_S, send)
    gevent.spawn(_every, CPU_SAMPLE_S, lambda: collector.sample_cpu(label))
    collector.environment.events.test_stopping.add_listener(lambda **_: collector.close())
    collector.environment.events.test_stop.add_listener(lambda **_: send(final=True))


def _as_master(collector: Collector, runner: Runner | None) -> None:
    """The master, or the only process: merges, prints progress, owns the run clock, writes the file."""
    if isinstance(runner, MasterRunner):
        runner.register_message(MESSAGE_TYPE, collector.on_worker_message)
    label = "master" if isinstance(runner, MasterRunner) else "locust"
    gevent.spawn(_every, CPU_SAMPLE_S, lambda: collector.sample_cpu(label))
    if collector.settings.progress:
        gevent.spawn(_every, PROGRESS_S, collector.print_progress)
    events_ = collector.environment.events
    events_.test_start.add_listener(lambda **_: collector.start_clock())
    events_.test_stopping.add_listener(lambda **_: collector.end_window())  # a locustfile's shape ended the run

    def on_quitting(**_: Any) -> None:
        if collector.written:
            return
        collector.end_window()  # Locust stopped by itself (a shape's end) or was told to quit
        collector.await_finals()
        collector.write()

    events_.quitting.add_listener(on_quitting)
