"""The Locust plugin that measures a run: it runs INSIDE Locust, never in ci-perf itself.

The runner starts Locust with ``-f collector.py,<locustfile>``. Every request
event is recorded into a DDSketch per (arm, endpoint, time window) with counts,
failures and the most frequent failure messages (capped). Windows lie on an
absolute grid (``floor(start_time / window_s)``) so that workers on one clock
line up without talking to each other.

It also owns the run clock, instead of Locust's ``-t``: after ``CI_PERF_RUN_TIME``
seconds it stops the users gracefully (in-flight requests finish, up to
``--stop-timeout``), waits until every worker has sent its final windows, writes
the merged result, then quits Locust. With ``-t`` the master quits after a fixed
0.5 s and drops whatever the workers had not yet reported.

Settings come from environment variables set by the runner:

``CI_PERF_COLLECT_OUT``  where the master (or the single process) writes ``CollectedRun`` JSON
``CI_PERF_WINDOW_S``     window length in seconds
``CI_PERF_RUN_TIME``     seconds of load, counted from the start of spawning
``CI_PERF_PROGRESS``     "1": print a ``CI_PERF_PROGRESS {json}`` line to stdout every second

Stdout markers (``CI_PERF_STARTED``, ``CI_PERF_PROGRESS``, ``CI_PERF_WRITTEN``) are read by the runner.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections import Counter
from pathlib import Path
from typing import Any

import gevent
import psutil
from locust import __version__ as locust_version
from locust import events
from locust.env import Environment
from locust.rpc import Message
from locust.runners import MasterRunner, WorkerRunner

from ci_perf import sketches
from ci_perf.sketches import Sketch

MESSAGE_TYPE = "ci_perf_windows"
MAX_MESSAGES_PER_CELL = 10
MAX_MESSAGE_CHARS = 300
OTHER_MESSAGES = "(other failure messages)"
WORKER_FLUSH_S = 2.0
CPU_SAMPLE_S = 1.0
PROGRESS_S = 1.0
PROGRESS_SPAN_S = 5.0
ARM_KEY = "ci_perf_arm"  # = duet.ARM_KEY (not imported: duet.py is only loaded in duet mode)
INTENDED_KEY = "ci_perf_intended"  # set by open_model.py
HEAD = "head"
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

    def export(self, arm: str, endpoint: str, start: float) -> dict[str, Any]:
        sketch = sketches.from_counts(self.counts, zeros=self.zeros, total=self.total, low=self.low, high=self.high)
        return {
            "arm": arm,
            "endpoint": endpoint,
            "start": start,
            "requests": self.requests,
            "failures": self.failures,
            "latency": sketch.model_dump(),
            "errors": dict(self.messages),
            "first_start": self.first_start,
            "last_end": self.last_end,
        }


class _Merged:
    """Windows merged from every source (this process, every worker): exact sums."""

    def __init__(self) -> None:
        self.cells: dict[tuple[str, str, float], dict[str, Any]] = {}
        self.cpu: list[dict[str, Any]] = []

    def add(self, exported: list[dict[str, Any]]) -> None:
        for part in exported:
            key = (part["arm"], part["endpoint"], part["start"])
            have = self.cells.get(key)
            if have is None:
                self.cells[key] = part
                continue
            have["requests"] += part["requests"]
            have["failures"] += part["failures"]
            merged = sketches.merge([Sketch(**have["latency"]), Sketch(**part["latency"])])
            have["latency"] = merged.model_dump()
            messages: Counter[str] = Counter(have["errors"])
            _add_messages(messages, part["errors"])
            have["errors"] = dict(messages)
            have["first_start"] = min(have["first_start"], part["first_start"])
            have["last_end"] = max(have["last_end"], part["last_end"])

    def progress(self, *, now: float, started: float, run_time: float) -> dict[str, Any]:
        recent_from = now - PROGRESS_SPAN_S
        total = failures = recent = 0
        recent_sketches = []
        for (_, _, start), cell in self.cells.items():
            total += cell["requests"]
            failures += cell["failures"]
            if start >= recent_from:
                recent += cell["requests"]
                recent_sketches.append(Sketch(**cell["latency"]))
        span = min(PROGRESS_SPAN_S, max(now - started, 1e-9))
        return {
            "elapsed": round(now - started, 1),
            "total": run_time,
            "requests": total,
            "failures": failures,
            "rps": round(recent / span, 1),
            "p95_ms": sketches.quantile(sketches.merge(recent_sketches), 0.95),
        }


class Collector:
    """Records this process's requests; on the master (or alone) also merges and writes."""

    def __init__(self, environment: Environment, *, window_s: float) -> None:
        self.environment = environment
        self.window_s = window_s
        self.cells: dict[tuple[str, str, str, float], _Cell] = {}  # (arm, method, name, window index)
        self.cpu: list[dict[str, Any]] = []
        self.merged = _Merged()
        self.process = psutil.Process()
        self.process.cpu_percent(None)
        self.peak_users = 0
        self.started_at: float | None = None
        self.workers: list[str] = []
        self.stop_timeout = float(environment.parsed_options.stop_timeout) if environment.parsed_options else 0.0
        self.finals_received = 0
        self.written = False
        self.steps: list[dict[str, Any]] = []  # shape.py: when each stage began
        self.broke: dict[str, Any] | None = None  # shape.py: where a breakpoint run broke
        self.open_counts: Counter[str] = Counter()  # open_model.py: scheduled, late, dropped …

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

    def drain(self) -> list[dict[str, Any]]:
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
            self.cpu.append({"process": label, "at": time.time(), "percent": self.process.cpu_percent(None)})

    # -- the master, or the only process -------------------------------------------------------
    def progress_line(self) -> None:
        if self.started_at is None:
            return
        self.merged.add(self.drain())
        run_time = float(os.environ.get("CI_PERF_RUN_TIME", "0"))
        line = self.merged.progress(now=time.time(), started=self.started_at, run_time=run_time)
        print("CI_PERF_PROGRESS " + json.dumps(line), flush=True)

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

    def on_worker_message(self, environment: Environment, msg: Any, **_: Any) -> None:  # noqa: ARG002 - Locust's signature
        self.merged.add(msg.data["windows"])
        self.merged.cpu.extend(msg.data["cpu"])
        self.open_counts.update(msg.data.get("open") or {})
        if msg.data.get("final"):
            self.finals_received += 1

    def write(self) -> None:
        if self.written:
            return
        out = os.environ.get("CI_PERF_COLLECT_OUT")
        if not out:
            return
        self.merged.add(self.drain())
        self.merged.cpu.extend(self.cpu)
        runner = self.environment.runner
        warnings = []
        if getattr(runner, "cpu_warning_emitted", False) or getattr(runner, "worker_cpu_warning_emitted", False):
            warnings.append("Locust reported a load-generator CPU above 90%")
        windows = []
        for part in self.merged.cells.values():
            messages = sorted(part["errors"].items(), key=lambda item: (-item[1], item[0]))
            windows.append({**part, "errors": [{"message": m, "count": c} for m, c in messages]})
        document = {
            "locust_version": locust_version,
            "window_s": self.window_s,
            "windows": windows,
            "cpu": self.merged.cpu,
            "cpu_warnings": warnings,
            "peak_users": self.peak_users,
            "started_at": self.started_at,
            "steps": self.steps,
            "broke": self.broke,
            "open_model": dict(self.open_counts) if self.open_counts else None,
        }
        path = Path(out)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(document), encoding="utf-8")
        tmp.replace(path)
        self.written = True
        print("CI_PERF_WRITTEN", flush=True)


def _every(seconds: float, action: Any) -> None:
    while True:
        gevent.sleep(seconds)
        action()


_collector: Collector | None = None


@events.init.add_listener
def _on_init(environment: Environment, **_: Any) -> None:
    global _collector  # noqa: PLW0603 - Locust plugins hook module-level events; one collector per process
    window_s = float(os.environ.get("CI_PERF_WINDOW_S", "1"))
    collector = _collector = Collector(environment, window_s=window_s)
    environment.ci_perf_collector = collector  # type: ignore[attr-defined] # for shape.py and open_model.py
    environment.events.request.add_listener(collector.on_request)
    runner = environment.runner
    if isinstance(runner, WorkerRunner):
        label = f"worker-{os.getpid()}"

        def flush(final: bool = False) -> None:
            runner.send_message(
                MESSAGE_TYPE,
                {"windows": collector.drain(), "cpu": collector.cpu, "final": final, "open": collector.open_counts},
            )
            collector.cpu = []
            collector.open_counts = Counter()

        gevent.spawn(_every, WORKER_FLUSH_S, flush)
        gevent.spawn(_every, CPU_SAMPLE_S, lambda: collector.sample_cpu(label))
        environment.events.test_stop.add_listener(lambda **_: flush(final=True))
        return
    if isinstance(runner, MasterRunner):
        runner.register_message(MESSAGE_TYPE, collector.on_worker_message)
    gevent.spawn(
        _every,
        CPU_SAMPLE_S,
        lambda: collector.sample_cpu("master" if runner is not None and isinstance(runner, MasterRunner) else "locust"),
    )
    if os.environ.get("CI_PERF_PROGRESS") == "1":
        gevent.spawn(_every, PROGRESS_S, collector.progress_line)

    def on_test_start(**_: Any) -> None:
        if collector.started_at is not None:
            return
        collector.started_at = time.time()
        if isinstance(runner, MasterRunner):
            collector.workers = list(runner.clients.keys())
        print("CI_PERF_STARTED", flush=True)
        run_time = float(os.environ.get("CI_PERF_RUN_TIME", "0"))
        if run_time > 0:
            gevent.spawn_later(run_time, collector.finish)

    environment.events.test_start.add_listener(on_test_start)
    environment.events.quitting.add_listener(lambda **_: collector.write())
