"""What a load run produced: the collector's raw windows and the versioned ``RunResult``.

``CollectedRun`` is what the collector inside Locust writes (one record per
endpoint × time window, already merged across workers). ``RunResult`` is the
public ``result.json``: meta, totals per endpoint and for the aggregate (warm-up
excluded), and the per-window sketches the statistics work on. Bump
``SCHEMA_VERSION`` on any incompatible change; readers reject versions they do
not know with a clear message.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationError

from ci_perf.errors import InputError
from ci_perf.models import Strict
from ci_perf.sketches import Sketch

# 2: duet (``base``), capacity, open model; 3: unfinished requests, task exceptions, other hosts, the users that
# ran, throughput over the measured window. Older files read as they are (the new fields take their defaults).
SCHEMA_VERSION = 3
READABLE_VERSIONS = (1, 2, 3)
AGGREGATE = "(all endpoints)"  # the name of the all-endpoints row in every table


# Stats field → (label, unit, higher is worse?): how every table and rule names a measure.
MEASURES: dict[str, tuple[str, str, bool]] = {
    "p50_ms": ("p50", "ms", True),
    "p90_ms": ("p90", "ms", True),
    "p95_ms": ("p95", "ms", True),
    "p99_ms": ("p99", "ms", True),
    "p999_ms": ("p99.9", "ms", True),
    "max_ms": ("max", "ms", True),
    "mean_ms": ("mean", "ms", True),
    "error_rate_percent": ("error rate", "%", True),
    "rps": ("throughput", "rps", False),
    "capacity_rps": ("capacity", "rps", False),  # breakpoint runs: RunResult.capacity, not a Stats field
}


# the collector keeps a few distinct failure messages per window; the rest are counted under this one
OTHER_MESSAGES = "(other failure messages)"


class ErrorCount(Strict):
    message: str
    count: int


class EndpointWindow(Strict):
    """One endpoint during one window ``[start, start + window_s)`` (epoch seconds).

    ``unfinished``: requests still in flight when the run ended that had waited longer than every answer of their
    endpoint allows (``analysis.summarize.unfinished_after_ms``), in the window where the run ended (a request stuck
    since the warm-up still counts). They are in ``requests`` and ``failures`` too, and their wait so far is in
    ``latency`` as a lower bound. Younger requests in flight were cut off by the end of the run, not by the service:
    they are in ``requests`` only (sent, outcome unknown).
    """

    start: float
    requests: int
    failures: int
    latency: Sketch
    errors: list[ErrorCount] = []
    unfinished: int = 0


class CpuSample(Strict):
    process: str
    at: float
    percent: float


class CollectedEndpointWindow(EndpointWindow):
    arm: Literal["head", "base"] = "head"
    endpoint: str
    host: str | None = None  # a host other than the arm's target (``other:8080``); None: the target
    # requests still in flight when the run ended: how long each had waited (ms); in no other field yet
    in_flight_ms: list[float] = []
    first_start: float
    last_end: float


class StepMark(Strict):
    """shape.py: a stage began (epoch seconds) with this target (users)."""

    start: float
    target: float | None
    index: int


class BreakMark(Strict):
    """shape.py: the breakpoint run stopped after stage ``index`` for ``reason`` (Locust's own numbers)."""

    index: int
    reason: str
    at: float


class TaskException(Strict):
    """Unhandled exceptions of the users' tasks with one type, message and place, over the whole run."""

    type: str
    message: str
    count: int
    where: str | None = Field(description='the innermost frame in the locustfile: "locustfile.py:12"')


class CollectedRun(Strict):
    """The collector's output file, read back by the runner."""

    locust_version: str
    window_s: float
    windows: list[CollectedEndpointWindow]
    cpu: list[CpuSample] = []
    cpu_warnings: list[str] = []
    peak_users: int = 0
    started_at: float | None = None
    steps: list[StepMark] = []
    broke: BreakMark | None = None
    open_model: dict[str, float] | None = None  # open_model.py's counters, summed over processes
    stopped_at: float | None = None  # epoch seconds: the measured window's end, when in-flight requests were cut off
    exceptions: list[TaskException] = []  # merged over processes, most frequent first


class Stats(Strict):
    """Totals over the measured (post-warm-up) part of a run. Latencies in ms.

    ``unfinished`` requests (no response when the run ended) are in ``requests`` and ``failures`` too, and their
    time so far counts in the percentiles as a lower bound. ``rps`` is requests over the measured window.
    """

    requests: int
    failures: int
    unfinished: int = 0
    error_rate_percent: float
    rps: float
    mean_ms: float | None
    p50_ms: float | None
    p90_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    p999_ms: float | None
    max_ms: float | None


class EndpointResult(Strict):
    name: str
    host: str | None = None  # ``RunResult.other_hosts`` only: the host these requests went to
    stats: Stats
    errors: list[ErrorCount] = []
    windows: list[EndpointWindow] = []


class GeneratorHealth(Strict):
    """How busy the load generator was; a saturated generator measures itself, not the target."""

    processes: int
    cpu_median_percent: float | None
    cpu_max_percent: float | None
    saturated: bool
    warnings: list[str] = []


class RunMeta(Strict):
    tool_version: str
    locust_version: str
    target: str
    started_at: float = Field(description="epoch seconds of the first request")
    ended_at: float = Field(description="epoch seconds when the run ended (older results: of the last response)")
    duration_s: float = Field(description="from the first request to the end of the run, warm-up included")
    measured_s: float = Field(description="the window after warm-up that the totals and throughput cover")
    measured_from: float = Field(description="start of the first window after warm-up (epoch seconds)")
    warmup_s: float
    window_s: float
    load: dict[str, object]
    peak_users: int = Field(default=0, description="the most users that ran at once (0: not recorded)")
    scenario_key: str
    load_key: str
    git_sha: str | None = None
    git_branch: str | None = None
    baseline_target: str | None = Field(default=None, description="duet mode: the base deployment's URL")
    generator: GeneratorHealth
    reliable: bool = True
    unreliable_reasons: list[str] = []


def is_measured(window_start: float, measured_from: float) -> bool:
    """Whether a window counts in totals and verdicts (it starts after the warm-up)."""
    return window_start >= measured_from - 1e-9


class StepResult(Strict):
    """One step of a breakpoint run, judged on its settled second half."""

    index: int
    users: int
    start: float
    rps: float
    p95_ms: float | None
    error_rate_percent: float
    within_limits: bool


class Capacity(Strict):
    """Breakpoint: the most load the service took within the limits (``users`` and ``rps``)."""

    users: int | None
    rps: float | None
    broke_at_users: int | None
    reason: str
    limits: dict[str, float]
    steps: list[StepResult]


class OpenModelResult(Strict):
    """Arrival-rate runs: what was asked, what was achieved, what started late or not at all."""

    target_rps: float
    achieved_rps: float
    scheduled: int
    late: int
    dropped: int


class ArmResult(Strict):
    """Duet mode: the base deployment's side of the run, measured at the same time as the head."""

    target: str
    aggregate: Stats
    endpoints: list[EndpointResult]


class RunResult(Strict):
    schema_version: int = SCHEMA_VERSION
    meta: RunMeta
    aggregate: Stats
    endpoints: list[EndpointResult]
    other_hosts: list[EndpointResult] = Field(
        default=[], description="requests to hosts other than the target: shown, kept out of the aggregate and budget"
    )
    exceptions: list[TaskException] = []
    base: ArmResult | None = None
    capacity: Capacity | None = None
    open_model: OpenModelResult | None = None


def save_result(result: RunResult, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(result.model_dump_json(), encoding="utf-8")
    tmp.replace(path)


def load_result(path: Path) -> RunResult:
    """Read a ``result.json``; a wrong or unknown file is an ``InputError`` naming it."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(f"{path}: cannot read the result file ({exc.strerror or exc})") from exc
    return parse_result(text, source=str(path))


def parse_result(text: str, *, source: str) -> RunResult:
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"{source}: not JSON ({exc.msg} at line {exc.lineno}); is it a ci-perf result.json?") from exc
    version = document.get("schema_version") if isinstance(document, dict) else None
    if version not in READABLE_VERSIONS:
        raise InputError(
            f"{source}: result schema_version {version} is not supported "
            f"(this ci-perf reads versions {', '.join(map(str, READABLE_VERSIONS))}); record it again with this version"
        )
    try:
        return RunResult.model_validate(document)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"])
        raise InputError(f"{source}: not a ci-perf result ({field}: {first['msg']})") from exc


MatchedOn = Literal["scenario", "load"]


@dataclass(frozen=True)
class History:
    """The baseline runs (oldest first) and how they were chosen (``store.BaselineStore.history``)."""

    runs: list[RunResult] = field(default_factory=list)
    matched_on: MatchedOn = "scenario"
    anchor_sha: str | None = None  # the merge-base commit whose run ends the history, when one was found
