"""The user's locustfile before the run: its syntax, what Locust finds in it, and its own ``LoadTestShape``.

A locustfile's shape is honoured whole or refused, never half: with ``profile: load`` (no stages,
no arrival rate) its ticks drive the users and its end ends the run (``UserShape``: the run clock
is off and the run lasts as long as the shape); with any other profile the run is refused with the
shape's equivalent ``stages:``, sampled from its ``tick()`` by the probe (``plugins/probe.py``).
"""

from __future__ import annotations

import ast
import math
import re
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from ci_perf.config import LoadSettings, format_duration
from ci_perf.errors import EnvironmentFailure, InputError
from ci_perf.loadtest.inspection import PROBE, SAMPLE_CAP_S, LocustfileReport, ShapeSample

PROBE_TIMEOUT_S = 60.0
MAX_STAGES_SHOWN = 20
_MIGHT_HAVE_A_SHAPE = re.compile(r"Shape|import\s+\*")


@dataclass(frozen=True)
class UserShape:
    """A locustfile's own ``LoadTestShape`` that the run follows whole."""

    name: str
    length_s: float | None  # when its tick() first answers None; None: it could not be asked before the run
    peak_users: int | None  # the most users it asks for (over the ticks sampled)


def check_locustfile(path: Path) -> str:
    """Catch a syntax error here, with its line, instead of deep inside Locust's output; return the source."""
    try:
        source = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(f"locustfile {path}: cannot read it ({exc.strerror or exc})") from exc
    try:
        ast.parse(source, filename=str(path))
    except SyntaxError as exc:
        raise InputError(f"locustfile {path}:{exc.lineno}: syntax error: {exc.msg}; fix that line") from exc
    return source


def might_have_a_shape(source: str) -> bool:
    """Whether the probe must look: a shape is named ``…Shape`` or derives from ``LoadTestShape`` in the file.

    A shape imported under another name is caught inside Locust (``plugins/guard.py``) and refused.
    """
    return _MIGHT_HAVE_A_SHAPE.search(source) is not None


def probe_locustfile(path: Path, *, env: Mapping[str, str]) -> LocustfileReport:
    """Load the locustfile with Locust in a subprocess (the child's environment and working directory)."""
    command = [sys.executable, "-m", "ci_perf.loadtest.plugins.probe", str(path)]
    try:
        done = subprocess.run(  # noqa: S603 - our own module, the user's path as one argument
            command, env=dict(env), capture_output=True, text=True, timeout=PROBE_TIMEOUT_S, check=False
        )
    except subprocess.TimeoutExpired as exc:
        raise InputError(
            f"locustfile {path}: loading it took over {PROBE_TIMEOUT_S:.0f}s; does it do work when imported?"
        ) from exc
    lines = [line for line in done.stdout.splitlines() if line.startswith(PROBE)]
    if not lines:
        last = (done.stderr.strip().splitlines() or ["it printed nothing"])[-1]
        raise EnvironmentFailure(f"could not load {path} with Locust to inspect it: {last}")
    try:
        report = LocustfileReport.model_validate_json(lines[-1][len(PROBE) :])
    except ValidationError as exc:
        raise EnvironmentFailure(f"the locustfile probe answered unreadably: {exc.errors()[0]['msg']}") from exc
    if report.error is not None:
        raise InputError(f"locustfile {path}: importing it raised {report.error}")
    return report


def user_shape(load: LoadSettings, report: LocustfileReport) -> UserShape | None:
    """The shape the run follows whole, or ``None``; an ``InputError`` when the load settings shape it too."""
    if not report.shapes:
        return None
    sample = report.shapes[0]  # Locust runs the first
    if load.profile != "load" or load.stages or load.arrival_rate is not None:
        raise InputError(_conflict(load, sample))
    if sample.error is None and sample.ends_at is None:
        raise InputError(
            f"the locustfile's LoadTestShape {sample.name} does not end within {format_duration(SAMPLE_CAP_S)} "
            "(its tick() never answers None), and ci-perf follows a shape to its end; make it end"
        )
    if sample.ends_at is not None and sample.ends_at <= load.warmup:
        raise InputError(
            f"the locustfile's LoadTestShape {sample.name} ends after {format_duration(sample.ends_at)}, within "
            f"load.warmup ({format_duration(load.warmup)}); shorten load.warmup"
        )
    peak = max((users for _, users, _ in sample.ticks), default=None)
    return UserShape(name=sample.name, length_s=sample.ends_at, peak_users=peak)


def _conflict(load: LoadSettings, sample: ShapeSample) -> str:
    what = "load.stages" if load.stages else "load.arrival_rate" if load.arrival_rate else f"profile: {load.profile}"
    head = (
        f"the locustfile's LoadTestShape {sample.name} sets the load, and so does {what}: ci-perf follows one "
        f"shape, not two. Either remove {what} (profile: load runs {sample.name} whole, to its end), or remove "
        f"{sample.name} from the locustfile"
    )
    if sample.error is not None or sample.ends_at is None:
        why = sample.error or f"it does not end within {format_duration(SAMPLE_CAP_S)}"
        return f"{head} and describe its steps in load.stages (its tick() could not be sampled: {why})"
    return f"{head} and put its equivalent in ci-perf.yml:\n{stages_yaml(stages_for(sample))}"


def stages_for(sample: ShapeSample) -> list[tuple[float, int]]:
    """The shape's ticks as ci-perf stages ``(duration, users)``: each ramp at its spawn rate, then a hold."""
    assert sample.ends_at is not None
    stages: list[tuple[float, int]] = []
    level, holding = 0.0, False  # the users reached; whether the last stage holds them (not a ramp)
    for index, (at, users, rate) in enumerate(sample.ticks):
        end = sample.ticks[index + 1][0] if index + 1 < len(sample.ticks) else sample.ends_at
        span = end - at
        if span <= 0:
            continue
        ramp = 0.0 if users == level else max(0.1, round(abs(users - level) / rate, 1)) if rate > 0 else span
        if ramp >= span:  # still on its way when the next tick changes the target
            level += math.copysign(min(rate * span, abs(users - level)), users - level)
            stages.append((span, round(level)))
            holding = False
            continue
        if ramp > 0:
            stages.append((ramp, users))
        elif holding and stages[-1][1] == users:  # only the spawn rate changed: one hold
            stages[-1] = (stages[-1][0] + span, users)
            continue
        stages.append((span - ramp, users))
        level, holding = users, True
    return stages


def stages_yaml(stages: list[tuple[float, int]]) -> str:
    shown = stages[:MAX_STAGES_SHOWN]
    lines = ["load:", "  stages:"]
    lines += [f"    - {{duration: {_exact(d)}, users: {u}}}" for d, u in shown]
    if len(stages) > len(shown):
        lines.append(f"    # … {len(stages) - len(shown)} more stages")
    return "\n".join(lines)


def _exact(seconds: float) -> str:
    """A stage's duration to the tenth of a second (``format_duration`` rounds to whole seconds)."""
    return f"{round(seconds * 1000)}ms" if seconds < 1 else f"{round(seconds, 1):g}s"
