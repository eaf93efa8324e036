"""The contract between the runner and the Locust plugins: every name both sides spell lives here.

The runner (in ci-perf's process) starts Locust with ``-f plugins/collector.py,…`` and passes the
plugins their settings as environment variables: ``PluginSettings.to_env`` writes them, each plugin
reads them back with ``PluginSettings.from_env`` and in no other way. The plugins answer on stdout
with markers (``Marker``; ``PROGRESS`` + a ``Progress``) and with the collector's file, a
``results.CollectedRun``. Inside Locust the plugins meet in a request's ``context`` (``ARM_KEY``,
``INTENDED_KEY``, and the collector's own ``INFLIGHT_KEY``) and through the collector on the environment
(``recorder_of``); workers send the master their windows as ``WorkerReport`` messages of type
``MESSAGE_TYPE``; when the run ends the master sends each worker a ``CloseOrder`` (``CLOSE_TYPE``), and
each answers at once with its final report, requests still in flight included as unfinished.

Every Locust process imports this module: it imports neither the config nor Locust.

=========================== ===================== =====================================================
variable                    ``PluginSettings``    read by
=========================== ===================== =====================================================
``CI_PERF_COLLECT_OUT``     ``collect_out``       collector: where the master (or the only process) writes
``CI_PERF_WINDOW_S``        ``window_s``          collector: window length, seconds
``CI_PERF_RUN_TIME``        ``run_time``          collector: seconds of load from the start of spawning
``CI_PERF_PROGRESS``        ``progress``          collector: "1" prints a progress line every second
``CI_PERF_THINK_TIME``      ``think_time``        zero_code: seconds between a user's tasks
``CI_PERF_ENDPOINTS``       ``endpoints``         zero_code, open_model: JSON ``[PluginEndpoint]``
``CI_PERF_BASELINE_TARGET`` ``baseline_target``   duet: the base deployment's URL
``CI_PERF_STAGES``          ``stages``            shape: JSON ``[{duration, target, jump}]`` (users)
``CI_PERF_ARRIVAL``         ``arrival``           open_model: the same, in requests per second
``CI_PERF_SPAWN_RATE``      ``spawn_rate``        shape: users started per second at least
``CI_PERF_PROCESSES``       ``processes``         open_model: each process takes 1/N of the rate
``CI_PERF_BREAK_ON``        ``break_on``          shape: JSON ``{p95_latency_ms, error_rate_percent}``
``CI_PERF_DUET_FIRST``      ``duet_first``        duet: which arm of each pair starts first (unset: a coin flip)
=========================== ===================== =====================================================
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping
from enum import StrEnum
from pathlib import Path
from string import Template
from typing import Any, Literal, Protocol

from pydantic import Field, ValidationError

from ci_perf.models import Frozen
from ci_perf.profiles import Stage
from ci_perf.results import BreakMark, CollectedEndpointWindow, CpuSample, StepMark, TaskException

ENV_VARIABLES = {
    "collect_out": "CI_PERF_COLLECT_OUT",
    "window_s": "CI_PERF_WINDOW_S",
    "run_time": "CI_PERF_RUN_TIME",
    "progress": "CI_PERF_PROGRESS",
    "think_time": "CI_PERF_THINK_TIME",
    "endpoints": "CI_PERF_ENDPOINTS",
    "baseline_target": "CI_PERF_BASELINE_TARGET",
    "stages": "CI_PERF_STAGES",
    "arrival": "CI_PERF_ARRIVAL",
    "spawn_rate": "CI_PERF_SPAWN_RATE",
    "processes": "CI_PERF_PROCESSES",
    "break_on": "CI_PERF_BREAK_ON",
    "duet_first": "CI_PERF_DUET_FIRST",
}
_JSON_FIELDS = {"endpoints", "stages", "arrival", "break_on"}

# request context keys, set by one plugin for another
ARM_KEY = "ci_perf_arm"  # duet: which deployment a request went to
Arm = Literal["head", "base"]
HEAD: Arm = "head"
BASE: Arm = "base"
INTENDED_KEY = "ci_perf_intended"  # open model: when the request should have started (epoch seconds)
INFLIGHT_KEY = "ci_perf_inflight"  # collector: which in-flight request this is (its report ends it)

COLLECTOR_ATTRIBUTE = "ci_perf_collector"  # the collector, on Locust's Environment
MESSAGE_TYPE = "ci_perf_windows"  # worker → master: a WorkerReport
CLOSE_TYPE = "ci_perf_close"  # master → worker: a CloseOrder
PROGRESS = "CI_PERF_PROGRESS "  # a stdout line: this prefix, then a Progress as JSON


class ProtocolError(ValueError):
    """A plugin setting in the environment is unreadable (Locust started by hand with wrong variables?)."""


class Marker(StrEnum):
    """A stdout line of its own that tells the runner where the run is."""

    STARTED = "CI_PERF_STARTED"  # the test began: the collector's clock runs
    WRITTEN = "CI_PERF_WRITTEN"  # the collector's file is complete on disk: Locust may be ended


class PluginEndpoint(Frozen):
    """One endpoint of zero-code mode, as ``config.Endpoint`` dumps it.

    ``headers`` are passed as written: ``${NAME}`` is expanded inside Locust (``request_arguments``),
    from the child's own environment, so a secret never sits in a variable or file of ours.
    """

    method: str
    path: str
    body: Any = None
    weight: int = Field(default=1, ge=1)
    headers: dict[str, str] = {}

    def request_arguments(self, environ: Mapping[str, str]) -> dict[str, Any]:
        """``client.request``'s keyword arguments: the name, the JSON body, the headers with ``${NAME}`` expanded."""
        arguments: dict[str, Any] = {"name": self.path}
        if self.body is not None:
            arguments["json"] = self.body
        try:
            headers = {name: Template(value).substitute(environ) for name, value in self.headers.items()}
        except KeyError as exc:  # Locust started by hand, without the variable (the runner checks first)
            raise ProtocolError(
                f"{ENV_VARIABLES['endpoints']}: a header of {self.method} {self.path} uses ${{{exc.args[0]}}}, "
                "which is not set in Locust's environment"
            ) from exc
        return arguments | ({"headers": headers} if headers else {})


class PluginSettings(Frozen):
    """Everything the plugins are told; an unset variable leaves the default."""

    collect_out: Path | None = None
    window_s: float = Field(default=1.0, gt=0)
    run_time: float = 0.0
    progress: bool = False
    think_time: float = Field(default=0.0, ge=0)
    endpoints: list[PluginEndpoint] = []
    baseline_target: str | None = None
    stages: list[Stage] | None = None
    arrival: list[Stage] | None = None
    spawn_rate: float = Field(default=10.0, gt=0)
    processes: int = Field(default=1, ge=1)
    break_on: dict[str, float] | None = None
    duet_first: Literal["head", "base"] | None = None  # confirm re-runs alternate it (None: a coin flip per pair)

    def to_env(self) -> dict[str, str]:
        """The variables for Locust's environment (unset fields are left out)."""
        env = {}
        for field, value in self.model_dump(mode="json").items():
            if value is None:
                continue
            if field in _JSON_FIELDS:
                text = json.dumps(value)
            elif isinstance(value, bool):
                text = "1" if value else "0"
            else:
                text = str(value)
            env[ENV_VARIABLES[field]] = text
        return env

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> PluginSettings:
        """Read the settings back; a variable that is missing or empty keeps its default."""
        raw: dict[str, object] = {}
        for field, variable in ENV_VARIABLES.items():
            text = environ.get(variable)
            if not text:
                continue
            if field in _JSON_FIELDS:
                try:
                    raw[field] = json.loads(text)
                except json.JSONDecodeError as exc:
                    raise ProtocolError(f"{variable}={text!r} is not JSON ({exc.msg}); {_WHO_SETS_IT}") from exc
            else:
                raw[field] = text
        try:
            return cls.model_validate(raw)
        except ValidationError as exc:
            first = exc.errors()[0]
            variable = ENV_VARIABLES[str(first["loc"][0])]
            where = ".".join(map(str, first["loc"][1:]))
            raise ProtocolError(
                f"{variable}={environ[variable]!r}: {where + ': ' if where else ''}{first['msg']}; {_WHO_SETS_IT}"
            ) from exc


_WHO_SETS_IT = "ci-perf's runner sets it (start Locust through `ci-perf run` or `ci-perf worker`)"


class Progress(Frozen):
    """A progress line: the run so far, for the live view (``pipeline.ProgressLine``)."""

    elapsed: float
    total: float
    requests: int
    failures: int
    rps: float
    p95_ms: float | None


def marker_in(line: str) -> Marker | None:
    """The marker a stdout line is, if it is one."""
    try:
        return Marker(line.strip())
    except ValueError:
        return None


def progress_line(progress: Progress) -> str:
    return PROGRESS + progress.model_dump_json()


def parse_progress(line: str) -> Progress | None:
    """The progress a stdout line carries; ``None`` for any other line (an unreadable one included)."""
    if not line.startswith(PROGRESS):
        return None
    try:
        return Progress.model_validate_json(line[len(PROGRESS) :].strip())
    except ValidationError:
        return None


class WorkerReport(Frozen):
    """What a worker sends the master every few seconds: windows drained since the last report."""

    windows: list[CollectedEndpointWindow]
    cpu: list[CpuSample] = []
    open: dict[str, float] = {}  # the open model's counters (scheduled, late, dropped, …)
    exceptions: list[TaskException] = []  # unhandled task exceptions since the last report
    final: bool = False  # sent when the run ended (CloseOrder) or Locust stopped: nothing follows from this worker


class CloseOrder(Frozen):
    """Master → worker: the measured window ended at ``at`` (epoch seconds); cut off what is in flight, report."""

    at: float


class Recorder(Protocol):
    """What the collector offers the other plugins."""

    open_counts: Counter[str]  # open_model: scheduled, late, dropped, unstarted, owed

    def mark_step(self, mark: StepMark) -> None:
        """shape: a stage began."""

    def stop_early(self, broke: BreakMark) -> None:
        """shape: a breakpoint step crossed a limit; write what was measured and end the run."""


def recorder_of(environment: object) -> Recorder | None:
    """The collector of this Locust process (``None`` where the collector plugin is not loaded)."""
    recorder: Recorder | None = getattr(environment, COLLECTOR_ATTRIBUTE, None)
    return recorder
