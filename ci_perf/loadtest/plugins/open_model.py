"""The open model inside Locust: requests start on a schedule, whatever the response time.

The runner uses this file instead of ``zero_code.py`` when ``load.arrival_rate`` (or stages with
``arrival_rate``) is set, and passes (``protocol.PluginSettings``) the ``endpoints``, the ``arrival``
stages (requests per second) and the number of ``processes`` (each process takes its share of the
rate, with a random phase). ``load.users`` simulated users form a pool; each takes the next scheduled
start, waits for it, picks an endpoint by weight and sends it (its headers' ``${NAME}`` expanded from
this process's environment) with
``context[protocol.INTENDED_KEY]`` = the intended start, so that the collector measures latency from
the intended start (coordinated omission corrected: a stalled service is charged for the requests
it made wait). A start more than ``MAX_LATE_S`` behind schedule is dropped and counted — the pool
was too small for the load — and so is every scheduled start the run never reached.
"""

from __future__ import annotations

import os
import random
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import gevent
from locust import constant, events, task
from locust.contrib.fasthttp import FastHttpUser
from locust.env import Environment
from locust.runners import MasterRunner

from ci_perf.loadtest.protocol import INTENDED_KEY, PluginSettings, recorder_of
from ci_perf.profiles import requests_owed, scheduled_starts

LATE_S = 0.010  # a start this far behind schedule is late (counted; latency still corrected)
MAX_LATE_S = 1.0  # … this far behind, it is dropped: the pool of users cannot keep up

_SETTINGS = PluginSettings.from_env(os.environ)
_ENDPOINTS = _SETTINGS.endpoints
_PLAN = _SETTINGS.arrival or []
_SHARE = 1.0 / _SETTINGS.processes
_rng = random.Random()  # noqa: S311 - load mix and phase, not cryptography


class _Schedule:
    """This process's intended start times (epoch seconds), shared by its users."""

    def __init__(self) -> None:
        self.times: Iterator[float] | None = None
        self.started_at = 0.0
        self.taken = 0  # starts this process's users took (the collector's counters are flushed away)

    def begin(self) -> None:
        _rng.seed()  # after Locust forked its --processes: each process its own phase and endpoint picks
        self.started_at = time.time()
        self.times = scheduled_starts(_PLAN, offset=_rng.random(), share=_SHARE)

    def next(self) -> float | None:
        if self.times is None:
            return None
        return next((self.started_at + t for t in self.times), None)

    def owed(self, until: float) -> float:
        """How many starts the rate owed this process from the run's start until ``until``."""
        return requests_owed(_PLAN, until - self.started_at, share=_SHARE)


_schedule = _Schedule()
_weights = [e.weight for e in _ENDPOINTS]
_arguments = [e.request_arguments(os.environ) for e in _ENDPOINTS]  # headers' ${NAME} expanded here, once


def _counters(environment: Environment) -> Counter[str]:
    recorder = recorder_of(environment)
    assert recorder is not None  # the runner always loads the collector first
    return recorder.open_counts


class OpenModelUser(FastHttpUser):
    """One of the pool: takes scheduled starts one after the other."""

    wait_time = constant(0)

    @task
    def scheduled_request(self) -> None:
        intended = _schedule.next()
        if intended is None:
            gevent.sleep(1.0)  # the schedule is over; the collector ends the run
            return
        delay = intended - time.time()
        if delay > 0:
            gevent.sleep(delay)
        counts = _counters(self.environment)
        lateness = time.time() - intended
        counts["scheduled"] += 1
        _schedule.taken += 1
        if lateness > MAX_LATE_S:
            counts["dropped"] += 1
            return
        if lateness > LATE_S:
            counts["late"] += 1
        index = _rng.choices(range(len(_ENDPOINTS)), weights=_weights)[0]
        endpoint = _ENDPOINTS[index]
        self.client.request(endpoint.method, endpoint.path, context={INTENDED_KEY: intended}, **_arguments[index])


@events.test_start.add_listener
def _on_test_start(environment: Environment, **_: Any) -> None:
    if not isinstance(environment.runner, MasterRunner):  # the master runs no users
        _schedule.begin()


@events.test_stop.add_listener
def _on_test_stop(environment: Environment, **_: Any) -> None:
    """Starts the schedule owed but no user took are dropped too (the pool was busy to the end)."""
    recorder = recorder_of(environment)
    if recorder is None or _schedule.times is None or isinstance(environment.runner, MasterRunner):
        return
    owed = _schedule.owed(time.time())
    recorder.open_counts["unstarted"] += max(0, round(owed) - _schedule.taken)
    recorder.open_counts["owed"] += owed  # type: ignore[assignment] # a Counter of requests holds this float too
