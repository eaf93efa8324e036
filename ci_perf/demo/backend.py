"""What the demo service's routes do behind the scenes, and its Prometheus metrics (``GET /metrics``).

A request spends its knob's ``latency_ms`` (± ``jitter_ms``): part of it in its simulated database
queries (``queries`` of ``query_ms`` ± ``query_jitter_ms`` each, holding a pool connection) and in
an external call (``external_ms`` ± ``external_jitter_ms``), the rest in its own code. ``n_plus_one``
multiplies the queries (one query per item: the N+1), and each extra query adds its time to the
request. The metrics are the usual server-side instrumentation, with the names ci-perf's
``server_metrics`` defaults read:

- ``http_request_duration_seconds`` (histogram; ``method``, ``endpoint``: the route, e.g.
  ``/api/products/{id}``, ``status``)
- ``db_query_duration_seconds`` (histogram; ``endpoint``) and ``db_pool_connections_in_use`` /
  ``db_pool_connections_max`` (gauges)
- ``external_request_duration_seconds`` (histogram; ``service``), ``external_request_retries_total``
  and ``external_request_failures_total`` (counters; the demo's calls neither retry nor fail)
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel, ConfigDict, Field

HTTP_DURATION = "http_request_duration_seconds"
DB_QUERY_DURATION = "db_query_duration_seconds"
DB_POOL_IN_USE = "db_pool_connections_in_use"
DB_POOL_MAX = "db_pool_connections_max"
EXTERNAL_DURATION = "external_request_duration_seconds"
EXTERNAL_RETRIES = "external_request_retries"  # prometheus_client adds _total
EXTERNAL_FAILURES = "external_request_failures"
EXTERNAL_SERVICE = "payments"  # the service the routes with ``external_ms`` call
DEFAULT_POOL_SIZE = 10
METRICS_CONTENT_TYPE = CONTENT_TYPE_LATEST
HTTP_BUCKETS = (0.002, 0.005, 0.01, 0.015, 0.02, 0.025, 0.03, 0.04, 0.05, 0.075, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
DB_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.5)


class Knob(BaseModel):
    """How one route behaves (``POST /__knobs`` changes it while the service runs)."""

    model_config = ConfigDict(extra="forbid")

    latency_ms: float = Field(default=0.0, ge=0)
    jitter_ms: float = Field(default=0.0, ge=0)
    error_rate: float = Field(default=0.0, ge=0, le=1)
    queries: int = Field(default=0, ge=0, le=1000)
    query_ms: float = Field(default=0.0, ge=0)
    query_jitter_ms: float = Field(default=0.0, ge=0)
    n_plus_one: int = Field(default=1, ge=1, le=1000)
    external_ms: float = Field(default=0.0, ge=0)
    external_jitter_ms: float = Field(default=0.0, ge=0)


@dataclass(frozen=True)
class Work:
    """One request's simulated time, drawn from its knob: its own code, each query, the external call (s)."""

    own_s: float
    queries_s: tuple[float, ...]
    external_s: float | None


def draw_work(knob: Knob) -> Work:
    """The parts of one request; with ``n_plus_one`` 1 they add up to ``latency_ms`` ± the jitters."""
    nominal = knob.latency_ms - knob.queries * knob.query_ms - knob.external_ms
    own = nominal + random.uniform(-knob.jitter_ms, knob.jitter_ms)  # noqa: S311 - simulated jitter
    queries = tuple(
        max(0.0, knob.query_ms + random.uniform(-knob.query_jitter_ms, knob.query_jitter_ms)) / 1000  # noqa: S311
        for _ in range(knob.queries * knob.n_plus_one)
    )
    external = None
    if knob.external_ms:
        drawn = knob.external_ms + random.uniform(-knob.external_jitter_ms, knob.external_jitter_ms)  # noqa: S311
        external = max(0.0, drawn) / 1000
    return Work(own_s=max(0.0, own) / 1000, queries_s=queries, external_s=external)


class Instruments:
    """The service's own metrics, in a registry of its own (several services may share a process)."""

    def __init__(self, pool_size: int = DEFAULT_POOL_SIZE) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.http = Histogram(
            HTTP_DURATION,
            "Requests served, by route.",
            ["method", "endpoint", "status"],
            buckets=HTTP_BUCKETS,
            registry=self.registry,
        )
        self.queries = Histogram(
            DB_QUERY_DURATION, "Database queries (simulated).", ["endpoint"], buckets=DB_BUCKETS, registry=self.registry
        )
        self.pool_in_use = Gauge(DB_POOL_IN_USE, "Database connections in use.", registry=self.registry)
        self.pool_max = Gauge(DB_POOL_MAX, "Database connections in the pool.", registry=self.registry)
        self.pool_max.set(pool_size)
        self.external = Histogram(
            EXTERNAL_DURATION, "Calls to other services (simulated).", ["service"], registry=self.registry
        )
        for name, text in (
            (EXTERNAL_RETRIES, "Retried calls to other services."),
            (EXTERNAL_FAILURES, "Failed calls."),
        ):
            Counter(name, text, ["service"], registry=self.registry).labels(EXTERNAL_SERVICE)  # shown at 0
        self._called = self.external.labels(EXTERNAL_SERVICE)
        self._served: dict[tuple[str, str, int], Histogram] = {}
        self._queried: dict[str, Callable[[float], None]] = {}

    def set_pool_size(self, size: int) -> None:
        self.pool_max.set(size)

    def perform(self, route: str, work: Work) -> None:
        """Spend the request's time: its queries on one pool connection, then its own code and external call."""
        if work.queries_s:
            database_s = sum(work.queries_s)
            if database_s > 0:  # sleep(0) still hands the GIL over: ~0.1 ms under load
                self.pool_in_use.inc()
                try:
                    time.sleep(database_s)
                finally:
                    self.pool_in_use.dec()
            observe = self._queried.get(route) or self._queried.setdefault(route, self.queries.labels(route).observe)
            for seconds in work.queries_s:
                observe(seconds)
        rest = work.own_s + (work.external_s or 0.0)
        if rest > 0:
            time.sleep(rest)
        if work.external_s is not None:
            self._called.observe(work.external_s)

    def served(self, *, method: str, route: str, status: int, seconds: float) -> None:
        """One request answered: ``route`` is its template (``/api/products/{id}``)."""
        key = (method, route, status)
        child = self._served.get(key)
        if child is None:  # labels() costs a lock and a few µs: look each child up once
            child = self._served[key] = self.http.labels(method, route, str(status))
        child.observe(seconds)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
