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
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Literal

from annotated_types import MaxLen
from pydantic import AfterValidator, Field, StringConstraints, ValidationError

from ci_perf.errors import InputError
from ci_perf.formatting import one_line
from ci_perf.models import Strict
from ci_perf.sketches import Sketch

# 2: duet (``base``), capacity, open model; 3: unfinished requests, task exceptions, other hosts, the users that
# ran, throughput over the measured window; 4: server-side metrics from Prometheus (``server``,
# ``server_requests``). Older files read as they are (the new fields take their defaults).
SCHEMA_VERSION = 4
READABLE_VERSIONS = (1, 2, 3, 4)
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
    "winsorised_mean_ms": ("mean (winsorised 5 %)", "ms", True),
    "error_rate_percent": ("error rate", "%", True),
    "rps": ("throughput", "rps", False),
    "capacity_rps": ("capacity", "rps", False),  # breakpoint runs: RunResult.capacity, not a Stats field
}


# the collector keeps a few distinct failure messages per window; the rest are counted under this one
OTHER_MESSAGES = "(other failure messages)"


# -- what a value in a result may be ------------------------------------------------------------
# A result.json may come from an artifact of an unprivileged (fork's) run, and a data branch holds what earlier
# versions wrote: every field is typed and bounded, generously enough for any real run, so that what reaches a
# report is text of a sane length and finite numbers of a sane size.

MAX_TEXT = 10_000  # characters of one string (the collector caps messages at 300; endpoint names are the user's)
MAX_ITEMS = 1_000_000  # entries of one list (the file is size-checked too)
MAX_COUNT = 10**15  # requests, users, processes, …
MAX_NUMBER = 1e15  # milliseconds, seconds, rates
MAX_PROCESSES = 256  # Locust processes on one machine (config.LoadSettings allows as many)
MAX_STAGES = 10_000  # stages, stress factors
MAX_SKETCH_KEY = 50_000  # DDSketch keys of 1 % accuracy: ±36,000 spans every positive double


def _text(value: str) -> str:
    if any("\ud800" <= ch <= "\udfff" for ch in value):
        raise ValueError("contains a lone surrogate, which is not text")
    return value


Text = Annotated[str, StringConstraints(max_length=MAX_TEXT), AfterValidator(_text)]
Token = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9._/+-]{1,100}$")]  # versions, keys, commit ids
Count = Annotated[int, Field(ge=0, le=MAX_COUNT)]
Number = Annotated[float, Field(ge=-MAX_NUMBER, le=MAX_NUMBER, allow_inf_nan=False)]
Amount = Annotated[float, Field(ge=0, le=MAX_NUMBER, allow_inf_nan=False)]  # never negative: ms, s, rps, %CPU
Percent = Annotated[float, Field(ge=0, le=100, allow_inf_nan=False)]
Epoch = Annotated[float, Field(ge=0, le=1e11, allow_inf_nan=False)]  # seconds since 1970, before the year 5000


def _sane_sketch(sketch: Sketch) -> Sketch:
    """The analysis indexes bins by key and trusts the exact count: both must hold together."""
    if not -MAX_SKETCH_KEY <= sketch.offset <= MAX_SKETCH_KEY - len(sketch.bins):
        raise ValueError(f"offset and bins must be DDSketch keys within ±{MAX_SKETCH_KEY:,}")
    if sketch.zeros < 0 or any(n < 0 for n in sketch.bins):
        raise ValueError("bins and zeros count requests: never negative")
    if sketch.count != sketch.zeros + sum(sketch.bins) or sketch.count > MAX_COUNT:
        raise ValueError("count must be zeros plus the bins' sum")
    numbers = (sketch.sum, sketch.min, sketch.max)
    if not all(math.isfinite(x) and 0 <= x <= MAX_NUMBER * MAX_COUNT for x in numbers) or sketch.min > sketch.max:
        raise ValueError("sum, min and max must be finite milliseconds, min ≤ max")
    return sketch


Latency = Annotated[Sketch, AfterValidator(_sane_sketch)]
WindowSeconds = Annotated[float, Field(ge=0.1, le=86_400, allow_inf_nan=False)]  # the statistics' window length
# what a breakpoint run stops on (``load.break_on``, ``Capacity.limits``)
BreakLimit = Annotated[str, StringConstraints(pattern=r"^(error_rate_percent|p95_latency_ms)$")]
Many = MaxLen(MAX_ITEMS)  # a list's bound (the file is size-checked too)


class ErrorCount(Strict):
    message: Text
    count: Count


class EndpointWindow(Strict):
    """One endpoint during one window ``[start, start + window_s)`` (epoch seconds).

    ``unfinished``: requests still in flight when the run ended that had waited longer than every answer of their
    endpoint allows (``analysis.summarize.unfinished_after_ms``), in the window where the run ended (a request stuck
    since the warm-up still counts). They are in ``requests`` and ``failures`` too, and their wait so far is in
    ``latency`` as a lower bound. Younger requests in flight were cut off by the end of the run, not by the service:
    they are in ``requests`` only (sent, outcome unknown).
    """

    start: Epoch
    requests: Count
    failures: Count
    latency: Latency
    errors: Annotated[list[ErrorCount], Many] = []
    unfinished: Count = 0


class CpuSample(Strict):
    process: Text
    at: Epoch
    percent: Amount


class CollectedEndpointWindow(EndpointWindow):
    arm: Literal["head", "base"] = "head"
    endpoint: Text
    host: Text | None = None  # a host other than the arm's target (``other:8080``); None: the target
    # requests still in flight when the run ended: how long each had waited (ms); in no other field yet
    in_flight_ms: Annotated[list[Amount], Many] = []
    first_start: Epoch
    last_end: Epoch


class StepMark(Strict):
    """shape.py: a stage began (epoch seconds) with this target (users)."""

    start: Epoch
    target: Amount | None
    index: Count


class BreakMark(Strict):
    """shape.py: the breakpoint run stopped after stage ``index`` for ``reason`` (Locust's own numbers)."""

    index: Count
    reason: Text
    at: Epoch


class TaskException(Strict):
    """Unhandled exceptions of the users' tasks with one type, message and place, over the whole run."""

    type: Text
    message: Text
    count: Count
    where: Text | None = Field(description='the innermost frame in the locustfile: "locustfile.py:12"')


class CollectedRun(Strict):
    """The collector's output file, read back by the runner."""

    locust_version: Token
    window_s: WindowSeconds
    windows: Annotated[list[CollectedEndpointWindow], Many]
    cpu: Annotated[list[CpuSample], Many] = []
    cpu_warnings: Annotated[list[Text], Many] = []
    peak_users: Count = 0
    started_at: Epoch | None = None
    steps: Annotated[list[StepMark], Many] = []
    broke: BreakMark | None = None
    open_model: dict[str, Number] | None = None  # open_model.py's counters, summed over processes
    stopped_at: Epoch | None = None  # epoch seconds: the measured window's end, when in-flight requests were cut off
    exceptions: Annotated[list[TaskException], Many] = []  # merged over processes, most frequent first


class Stats(Strict):
    """Totals over the measured (post-warm-up) part of a run. Latencies in ms.

    ``unfinished`` requests (no response when the run ended) are in ``requests`` and ``failures`` too, and their
    time so far counts in the percentiles as a lower bound. ``rps`` is requests over the measured window.
    """

    requests: Count
    failures: Count
    unfinished: Count = 0
    error_rate_percent: Percent
    rps: Amount
    mean_ms: Amount | None
    p50_ms: Amount | None
    p90_ms: Amount | None
    p95_ms: Amount | None
    p99_ms: Amount | None
    p999_ms: Amount | None
    max_ms: Amount | None
    # the mean with the fastest and slowest 5 % pulled in to p5 and p95 (issue 13, item 5; None before)
    winsorised_mean_ms: Amount | None = None


class EndpointResult(Strict):
    name: Text
    host: Text | None = None  # ``RunResult.other_hosts`` only: the host these requests went to
    stats: Stats
    errors: Annotated[list[ErrorCount], Many] = []
    windows: Annotated[list[EndpointWindow], Many] = []


class GeneratorHealth(Strict):
    """How busy the load generator was; a saturated generator measures itself, not the target."""

    processes: Count
    cpu_median_percent: Amount | None
    cpu_max_percent: Amount | None
    saturated: bool
    warnings: Annotated[list[Text], Many] = []


class LoadStage(Strict):
    """One of ``LoadMeta.stages``: over ``duration`` seconds move to ``users`` or ``arrival_rate``."""

    duration: Amount
    users: Count | None = None
    arrival_rate: Amount | None = None


class LoadMeta(Strict):
    """The load settings a run ran with (``config.LoadSettings`` as it ran, and ``peak_users``).

    Every version writes them all; version-1 files (before the load profiles) lack the profile settings,
    which then read as ``LoadSettings``' defaults. ``processes`` and ``window`` may be ``"auto"``.
    """

    profile: Literal["smoke", "load", "stress", "spike", "soak", "breakpoint"] = "load"
    users: Count
    spawn_rate: Amount
    duration: Amount
    warmup: Amount
    window: Amount | Literal["auto"] = "auto"
    processes: Annotated[int, Field(ge=1, le=MAX_PROCESSES)] | Literal["auto"] = 1
    workers: Count = 0
    master_host: Annotated[str, StringConstraints(max_length=255, pattern=r"^[A-Za-z0-9._:\[\]-]*$")] = "127.0.0.1"
    master_port: Annotated[int, Field(ge=1, le=65_535)] = 5557
    worker_timeout: Amount = 120.0
    stop_timeout: Amount = 10.0
    think_time: Amount = 0.0
    arrival_rate: Amount | None = None
    stages: Annotated[list[LoadStage], MaxLen(MAX_STAGES)] | None = None
    stress_factors: Annotated[list[Amount], MaxLen(MAX_STAGES)] = [1.0, 1.5, 2.0, 3.0]
    spike_users: Count | None = None
    step_users: Count | None = None
    step_duration: Amount = 10.0
    max_users: Count | None = None
    break_on: dict[BreakLimit, Amount | None] | None = None
    peak_users: Count = 0


class RunMeta(Strict):
    tool_version: Token
    locust_version: Token
    target: Text
    started_at: Epoch = Field(description="epoch seconds of the first request")
    ended_at: Epoch = Field(description="epoch seconds when the run ended (older results: of the last response)")
    duration_s: Amount = Field(description="from the first request to the end of the run, warm-up included")
    measured_s: Amount = Field(description="the window after warm-up that the totals and throughput cover")
    measured_from: Epoch = Field(description="start of the first window after warm-up (epoch seconds)")
    warmup_s: Amount
    window_s: WindowSeconds
    load: LoadMeta
    peak_users: Count = Field(default=0, description="the most users that ran at once (0: not recorded)")
    scenario_key: Token
    load_key: Token
    git_sha: Token | None = None
    git_branch: Text | None = None
    baseline_target: Text | None = Field(default=None, description="duet mode: the base deployment's URL")
    generator: GeneratorHealth
    reliable: bool = True
    unreliable_reasons: Annotated[list[Text], Many] = []


def is_measured(window_start: float, measured_from: float) -> bool:
    """Whether a window counts in totals and verdicts (it starts after the warm-up)."""
    return window_start >= measured_from - 1e-9


class StepResult(Strict):
    """One step of a breakpoint run, judged on its settled second half."""

    index: Count
    users: Count
    start: Epoch
    rps: Amount
    p95_ms: Amount | None
    error_rate_percent: Percent
    within_limits: bool


class Capacity(Strict):
    """Breakpoint: the most load the service took within the limits (``users`` and ``rps``)."""

    users: Count | None
    rps: Amount | None
    broke_at_users: Count | None
    reason: Text
    limits: dict[BreakLimit, Amount]
    steps: Annotated[list[StepResult], Many]


class OpenModelResult(Strict):
    """Arrival-rate runs: what was asked, what was achieved, what started late or not at all."""

    target_rps: Amount
    achieved_rps: Amount
    scheduled: Count
    late: Count
    dropped: Count


class ArmResult(Strict):
    """Duet mode: the base deployment's side of the run, measured at the same time as the head."""

    target: Text
    aggregate: Stats
    endpoints: Annotated[list[EndpointResult], Many]


class ServerPoint(Strict):
    """One step of a server-side metric's series: the value of its query over the step ending at ``at``."""

    at: Epoch
    value: Number


class ServerMetric(Strict):
    """A server-side metric measured through Prometheus over the run's measured window (issue 14).

    ``name`` is the budget rule (``database.query_p95_ms``) or a custom metric's name; ``query`` the PromQL
    as sent (placeholders filled in, never a credential); ``value`` the run-level value, or ``None`` with
    ``reason`` (``not measured: …``). Duet mode: ``base_value``/``base_reason`` are the base deployment's.
    """

    name: Token
    query: Text
    unit: Annotated[str, StringConstraints(max_length=10)] = ""
    value: Number | None
    reason: Text | None = None
    series: Annotated[list[ServerPoint], Many] = []
    base_value: Number | None = None
    base_reason: Text | None = None


class RunResult(Strict):
    schema_version: int = Field(default=SCHEMA_VERSION, ge=min(READABLE_VERSIONS), le=SCHEMA_VERSION)
    meta: RunMeta
    aggregate: Stats
    endpoints: Annotated[list[EndpointResult], Many]
    other_hosts: Annotated[list[EndpointResult], Many] = Field(
        default=[], description="requests to hosts other than the target: shown, kept out of the aggregate and budget"
    )
    exceptions: Annotated[list[TaskException], Many] = []
    base: ArmResult | None = None
    capacity: Capacity | None = None
    open_model: OpenModelResult | None = None
    server: Annotated[list[ServerMetric], Many] = Field(
        default=[], description="server-side metrics from Prometheus over the measured window (server_metrics)"
    )
    server_requests: dict[Text, Amount] = Field(
        default={}, description="the server's own request count per endpoint ('GET /api/x'), when it has one"
    )


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
    """A ``result.json``'s text → its ``RunResult``, or an ``InputError`` in one line that names the file and
    the first wrong field. The text may be an artifact of a fork's run: nothing in it is trusted (no NaN or
    Infinity, no repeated keys, numbers and strings only where the schema has them, every value bounded)."""
    document = _json_document(text, source=source)
    version = document.get("schema_version") if isinstance(document, dict) else None
    if type(version) is not int or version not in READABLE_VERSIONS:
        shown = one_line(json.dumps(version), 40)
        raise InputError(
            f"{source}: result schema_version {shown} is not supported "
            f"(this ci-perf reads versions {', '.join(map(str, READABLE_VERSIONS))}); record it again with this version"
        )
    try:
        return RunResult.model_validate(document, strict=True)
    except ValidationError as exc:
        problems = exc.errors(include_url=False, include_context=False, include_input=False)
        where = _field_path(problems[0]["loc"])
        more = f"; and {len(problems) - 1} more" if len(problems) > 1 else ""
        message = f"{where}: {one_line(problems[0]['msg'], 200)}{more}"
        raise InputError(f"{source}: not a ci-perf result ({message})") from exc


class _NotAResult(ValueError):
    """What the JSON reader's hooks refuse: values ci-perf never writes."""


def _json_document(text: str, *, source: str) -> object:
    try:
        return json.loads(text, parse_constant=_no_constant, object_pairs_hook=_unique_keys)
    except json.JSONDecodeError as exc:
        raise InputError(f"{source}: not JSON ({exc.msg} at line {exc.lineno}); is it a ci-perf result.json?") from exc
    except _NotAResult as exc:
        raise InputError(f"{source}: not a ci-perf result ({exc})") from exc
    except ValueError as exc:  # an integer of more digits than Python converts (4,300)
        raise InputError(f"{source}: not a ci-perf result (a number too large: {one_line(exc, 80)})") from exc
    except RecursionError as exc:
        raise InputError(f"{source}: not a ci-perf result (nested too deeply)") from exc


def _no_constant(name: str) -> object:
    raise _NotAResult(f"{name} is not a number a result holds")


def _unique_keys(pairs: list[tuple[str, object]]) -> dict[str, object]:
    """One object; a key given twice would let a reader and a renderer see two different values."""
    document = dict(pairs)
    if len(document) != len(pairs):
        keys = [key for key, _ in pairs]
        twice = next(key for index, key in enumerate(keys) if key in keys[:index])
        raise _NotAResult(f"key {one_line(json.dumps(twice), 60)} appears twice in one object")
    return document


_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,59}")


def _field_path(loc: tuple[int | str, ...]) -> str:
    """``meta.load.users``, ``endpoints[3].name``; a key from the file is quoted and made inert."""
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif _IDENTIFIER.fullmatch(part):
            path += f".{part}" if path else part
        else:
            path += f"[{one_line(json.dumps(part), 60)}]"
    return path or "the file"


MatchedOn = Literal["scenario", "load"]


@dataclass(frozen=True)
class History:
    """The baseline runs (oldest first) and how they were chosen (``store.BaselineStore.history``)."""

    runs: list[RunResult] = field(default_factory=list)
    matched_on: MatchedOn = "scenario"
    anchor_sha: str | None = None  # the merge-base commit whose run ends the history, when one was found
    # single mode (1-2 runs): other stored histories of 3 or more runs, to learn the run-to-run noise from
    others: list[list[RunResult]] = field(default_factory=list)
