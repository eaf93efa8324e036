"""Load profiles as stage sequences (pure): what the load is at each second of a run.

A profile becomes a list of ``Stage`` (k6's ramping stages): over ``duration`` seconds the target
moves linearly from the previous stage's target to this one's — users in the closed model,
requests per second in the open model (``arrival_rate``). ``shape.py`` (inside Locust) follows
``users_at``; ``open_model.py`` follows ``rate_at``. ``breakpoint`` is a staircase that the shape
stops early when the error rate or p95 crosses the limit.

=============  ==========================================================================
profile        stages (from ``users`` U, ``duration`` D unless the profile's settings say)
=============  ==========================================================================
smoke          ramp to U (default 2) and hold: a short check that everything answers
load           ramp to U at ``spawn_rate``, hold (no shape: Locust's own spawning)
stress         steps of U × ``stress_factors`` (1, 1.5, 2, 3), D split evenly
spike          U for 40 % of D, a jump to ``spike_users`` (5 U) for 20 %, back to U
soak           like load, for long (default D 10 min)
breakpoint     U, U + ``step_users``, … every ``step_duration`` up to ``max_users``
=============  ==========================================================================
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass


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


def breakpoint_stages(users: int, step_users: int, step_duration: float, max_users: int) -> list[Stage]:
    steps = max(1, math.floor((max_users - users) / step_users) + 1)
    return [Stage(step_duration, users + k * step_users, jump=True) for k in range(steps)]


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
