"""Load profiles as stage sequences (pure): what the load is at each second of a run.

A profile becomes a list of ``Stage`` (k6's ramping stages): over ``duration`` seconds the target
moves linearly from the previous stage's target to this one's — users in the closed model,
requests per second in the open model (``arrival_rate``). ``stage_plan`` is the one place that
turns the load settings into stages. Inside Locust, ``loadtest/plugins/shape.py`` follows
``users_at`` and ``loadtest/plugins/open_model.py`` follows ``scheduled_starts``. ``breakpoint`` is
a staircase that the shape stops early when a step crosses a limit (``limits_crossed``, which also
judges the steps afterwards from ci-perf's own windows).

=============  ==========================================================================
profile        stages (from ``users`` U, ``duration`` D unless the profile's settings say)
=============  ==========================================================================
smoke          ramp to U (default 2) and hold: a short check that everything answers
load           ramp to U at ``spawn_rate``, hold (no shape: Locust's own spawning)
stress         steps of U × ``stress_factors`` (1, 1.5, 2, 3), D split evenly
spike          U for 40 % of D, a jump to ``spike_users`` (5 U) for 20 %, back to U
soak           like load, for long (default D 10 min)
breakpoint     U, U + ``step_users``, … every ``step_duration`` up to ``max_users`` (20 U)
=============  ==========================================================================
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

SPIKE_FACTOR = 5  # spike_users defaults to 5 U
BREAKPOINT_MAX_FACTOR = 20  # max_users defaults to 20 U
P95_LIMIT = "p95_latency_ms"  # the keys of a breakpoint's limits (``load.break_on``)
ERROR_LIMIT = "error_rate_percent"


@dataclass(frozen=True)
class Stage:
    duration: float
    target: float  # users, or requests per second in the open model
    jump: bool = False  # reach the target at once instead of ramping over the stage


def stress_stages(users: int, duration: float, factors: Sequence[float]) -> list[Stage]:
    step = duration / len(factors)
    return [Stage(step, users * f, jump=True) for f in factors]


def spike_stages(users: int, spike_users: int, duration: float) -> list[Stage]:
    return [
        Stage(0.4 * duration, users, jump=True),
        Stage(0.2 * duration, spike_users, jump=True),
        Stage(0.4 * duration, users, jump=True),
    ]


def _ladder(users: int, step_users: int | None, max_users: int | None) -> tuple[int, int]:
    """A breakpoint staircase: (users added per step, number of steps), the defaults filled in."""
    step = step_users or users
    top = max_users or BREAKPOINT_MAX_FACTOR * users
    return step, max(1, math.floor((top - users) / step) + 1)


def breakpoint_steps(users: int, step_users: int | None, max_users: int | None) -> int:
    """How many steps a breakpoint run climbs from ``users`` to ``max_users`` (the default duration's unit)."""
    return _ladder(users, step_users, max_users)[1]


def breakpoint_stages(users: int, step_users: int | None, step_duration: float, max_users: int | None) -> list[Stage]:
    step, steps = _ladder(users, step_users, max_users)
    return [Stage(step_duration, users + k * step, jump=True) for k in range(steps)]


class StageSettings(Protocol):
    """One of ``stages:`` as ``config.StageSetting`` has it."""

    @property
    def duration(self) -> float: ...
    @property
    def users(self) -> int | None: ...
    @property
    def arrival_rate(self) -> float | None: ...


class ShapeSettings(Protocol):
    """What ``stage_plan`` reads of ``config.LoadSettings`` (a structural type: no import of the config)."""

    @property
    def profile(self) -> str: ...
    @property
    def users(self) -> int: ...
    @property
    def duration(self) -> float: ...
    @property
    def arrival_rate(self) -> float | None: ...
    @property
    def stages(self) -> Sequence[StageSettings] | None: ...
    @property
    def stress_factors(self) -> Sequence[float]: ...
    @property
    def spike_users(self) -> int | None: ...
    @property
    def step_users(self) -> int | None: ...
    @property
    def step_duration(self) -> float: ...
    @property
    def max_users(self) -> int | None: ...


def stage_plan(load: ShapeSettings) -> list[Stage] | None:
    """The stages Locust's shape or the open model follows; ``None`` for Locust's own spawning."""
    if load.stages:
        return [
            Stage(s.duration, float(s.users if s.users is not None else s.arrival_rate or 0.0)) for s in load.stages
        ]
    if load.arrival_rate is not None:
        return [Stage(load.duration, load.arrival_rate, jump=True)]
    if load.profile == "stress":
        return stress_stages(load.users, load.duration, load.stress_factors)
    if load.profile == "spike":
        return spike_stages(load.users, load.spike_users or SPIKE_FACTOR * load.users, load.duration)
    if load.profile == "breakpoint":
        stages = breakpoint_stages(load.users, load.step_users, load.step_duration, load.max_users)
        return stages[: max(1, math.ceil(load.duration / load.step_duration))]
    return None


def limits_crossed(limits: Mapping[str, float], *, p95_ms: float | None, error_rate_percent: float | None) -> list[str]:
    """The breakpoint limits a step crossed, one phrase each (``p95 812 ms > 500 ms``); empty when within.

    The one rule for both judges: the shape inside Locust (Locust's own numbers, to stop the run) and
    ``summarize`` (ci-perf's windows, for the capacity). A measure that is ``None`` (nothing was
    measured) crosses nothing.
    """
    crossed = []
    p95_limit = limits.get(P95_LIMIT)
    if p95_limit is not None and p95_ms is not None and p95_ms > p95_limit:
        crossed.append(f"p95 {p95_ms:.0f} ms > {p95_limit:g} ms")
    error_limit = limits.get(ERROR_LIMIT)
    if error_limit is not None and error_rate_percent is not None and error_rate_percent > error_limit:
        crossed.append(f"error rate {error_rate_percent:.2f} % > {error_limit:g} %")
    return crossed


def total(stages: Sequence[Stage]) -> float:
    return sum(s.duration for s in stages)


def target_at(stages: Sequence[Stage], elapsed: float) -> float | None:
    """The target ``elapsed`` seconds into the run; ``None`` after the last stage."""
    start, previous = 0.0, 0.0
    for stage in stages:
        end = start + stage.duration
        if elapsed < end:
            if stage.jump or stage.duration <= 0:
                return stage.target
            return previous + (stage.target - previous) * (elapsed - start) / stage.duration
        start, previous = end, stage.target
    return None


def step_index(stages: Sequence[Stage], elapsed: float) -> int | None:
    start = 0.0
    for index, stage in enumerate(stages):
        start += stage.duration
        if elapsed < start:
            return index
    return None


def users_at(stages: Sequence[Stage], elapsed: float, *, spawn_rate: float) -> tuple[int, float] | None:
    """What a Locust ``LoadTestShape.tick`` returns: (users, spawn rate), or ``None`` at the end.

    Ticks come every second: the rate covers the change to the next tick (a ramp) or from the last
    one (a jump, made within a second), and is never below the configured spawn rate.
    """
    target = target_at(stages, elapsed)
    if target is None:
        return None
    users = max(0, round(target))
    following = target_at(stages, elapsed + 1.0)
    previous = target_at(stages, elapsed - 1.0) if elapsed >= 1.0 else 0.0
    change = max(
        abs((following if following is not None else target) - target),
        abs(target - (previous if previous is not None else target)),
    )
    return users, max(spawn_rate, change, 1.0)


def scheduled_starts(stages: Sequence[Stage], *, offset: float = 0.0, share: float = 1.0) -> Iterator[float]:
    """Intended start times (seconds from the run's start) for an arrival rate that follows ``stages``.

    Request k starts where the integral of the rate reaches k + ``offset`` (a phase in [0, 1), so
    that processes splitting one rate with ``share`` = 1/N do not all fire at once).
    """
    start, previous, done = 0.0, 0.0, 0.0  # done: requests owed up to ``start``
    next_k = offset
    for stage in stages:
        a = previous if not stage.jump else stage.target
        b = stage.target
        # rate(t) = share · (a + (b − a) · t / d) on [0, d): owed(t) = share · (a t + (b − a) t² / 2d)
        d = stage.duration
        owed_end = done + share * (a + b) / 2 * d
        while next_k < owed_end:
            need = (next_k - done) / share
            if b == a:
                t = need / a if a > 0 else d
            else:
                slope = (b - a) / d
                t = (-a + math.sqrt(max(a * a + 2 * slope * need, 0.0))) / slope
            yield start + min(t, d)
            next_k += 1
        start, previous, done = start + d, stage.target, owed_end


def requests_owed(stages: Sequence[Stage], elapsed: float, *, share: float = 1.0) -> float:
    """How many starts a rate that follows ``stages`` owed from the run's start until ``elapsed`` seconds."""
    owed, start, previous = 0.0, 0.0, 0.0
    for stage in stages:
        part = min(max(elapsed - start, 0.0), stage.duration)
        a = stage.target if stage.jump else previous
        rate_end = a + (stage.target - a) * part / stage.duration if stage.duration else stage.target
        owed += share * (a + rate_end) / 2 * part
        start += stage.duration
        previous = stage.target
    return owed
