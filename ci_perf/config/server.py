"""``server_metrics:`` in ``ci-perf.yml``: the server-side budgets, measured through Prometheus.

Each rule of ``performance_budget.database`` and ``performance_budget.external_services`` is a
PromQL expression (``DEFAULT_QUERIES`` for the common instrumentation, ``queries`` to override or
add), and ``custom`` adds named metrics with a limit of their own. An expression may use:

* ``{window}``: the range of the measured window (run-level value) or ``series_window`` (each point of
  the series; 2 × ``step`` by default), e.g. ``rate(x[{window}])``;
* ``{matchers}``: ``server_metrics.matchers`` (``job="checkout"``), inside a selector's braces;
* ``{slow_query_le}``: a regular expression for the ``le`` label of the histogram bucket at
  ``database.slow_query_threshold_ms``.

The section belongs to the gate (``Gate.server_metrics``): a pull request is judged with its base
branch's queries and limits, as with the budget. ``Config.server_metrics`` reads it.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, field_validator

from ci_perf.config.load import check_headers
from ci_perf.config.units import Duration, HttpUrl
from ci_perf.models import Strict

# The metric names the defaults read: prometheus_client's conventions (the demo service exposes them all).
DB_QUERY_SECONDS = "db_query_duration_seconds"  # histogram: one observation per database query
DB_POOL_IN_USE = "db_pool_connections_in_use"  # gauge: connections checked out of the pool
DB_POOL_MAX = "db_pool_connections_max"  # gauge: the pool's size
EXTERNAL_SECONDS = "external_request_duration_seconds"  # histogram: one observation per outgoing call
EXTERNAL_RETRIES = "external_request_retries_total"  # counter: retries of outgoing calls
EXTERNAL_FAILURES = "external_request_failures_total"  # counter: outgoing calls that failed (timeouts included)
HTTP_REQUEST_SECONDS = "http_request_duration_seconds"  # histogram with labels method and endpoint (the route)


def _quantile(q: float, histogram: str) -> str:
    return f"histogram_quantile({q}, sum by (le) (rate({histogram}_bucket{{{{matchers}}}}[{{window}}]))) * 1000"


# budget rule ("section.key") → the PromQL that measures it; README "Server-side budgets (Prometheus)"
DEFAULT_QUERIES: dict[str, str] = {
    "database.query_p95_ms": _quantile(0.95, DB_QUERY_SECONDS),
    "database.query_p99_ms": _quantile(0.99, DB_QUERY_SECONDS),
    # the busiest moment counts: the peak share of the pool in use over the window
    "database.connection_pool_utilization": (
        f"100 * max(max_over_time({DB_POOL_IN_USE}{{{{matchers}}}}[{{window}}]) "
        f"/ max_over_time({DB_POOL_MAX}{{{{matchers}}}}[{{window}}]))"
    ),
    # the share (%) of queries slower than the threshold, from the bucket at the threshold
    "database.slow_query_threshold_ms": (
        f"100 * (1 - sum(rate({DB_QUERY_SECONDS}_bucket{{le=~`{{slow_query_le}}`,{{matchers}}}}[{{window}}])) "
        f"/ sum(rate({DB_QUERY_SECONDS}_count{{{{matchers}}}}[{{window}}])))"
    ),
    "external_services.p95_latency_ms": _quantile(0.95, EXTERNAL_SECONDS),
    # calls must end well before the client's timeout: their p99 is checked against it
    "external_services.timeout_ms": _quantile(0.99, EXTERNAL_SECONDS),
    "external_services.retry_count": f"sum(increase({EXTERNAL_RETRIES}{{{{matchers}}}}[{{window}}]))",
    # the failure rate (%) of outgoing calls, which a circuit breaker at this threshold would trip on
    "external_services.circuit_breaker_threshold": (
        f"100 * sum(rate({EXTERNAL_FAILURES}{{{{matchers}}}}[{{window}}])) "
        f"/ sum(rate({EXTERNAL_SECONDS}_count{{{{matchers}}}}[{{window}}]))"
    ),
}
# the server's own request count per endpoint, next to the load generator's (labels method and endpoint)
DEFAULT_REQUESTS_QUERY = (
    f"sum by (method, endpoint) (increase({HTTP_REQUEST_SECONDS}_count{{{{matchers}}}}[{{window}}]))"
)
SLOW_QUERY_PERCENT = 1.0  # database.slow_query_percent unless set: slow queries allowed, % of all queries
SECTIONS = ("database", "external_services")
PLACEHOLDERS = ("{window}", "{matchers}", "{slow_query_le}")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,79}")
_RULE = re.compile(rf"({'|'.join(SECTIONS)})\.[A-Za-z_][A-Za-z0-9_]{{0,79}}")


def _check_query(query: str) -> str:
    if not query.strip():
        raise ValueError("the query is empty; write a PromQL expression, e.g. sum(rate(http_requests_total[{window}]))")
    return query.strip()


Query = Annotated[str, AfterValidator(_check_query)]


class CustomMetric(Strict):
    """A named server-side metric with a limit of its own (``server_metrics.custom``)."""

    name: str = Field(description="how the report names it (letters, digits, _)")
    query: Query = Field(description="PromQL; {window}, {matchers} as in the defaults")
    limit: float
    higher_is_worse: bool = Field(default=True, description="true: pass when value ≤ limit; false: value ≥ limit")
    unit: str = Field(default="", max_length=10, description="shown after the value, e.g. ms, %, rps")

    @field_validator("name")
    @classmethod
    def _name(cls, name: str) -> str:
        if not _NAME.fullmatch(name):
            raise ValueError(f"{name!r} is not a metric name; use letters, digits and _ (e.g. queue_depth)")
        return name


class ServerMetricsSettings(Strict):
    """Where the server's metrics are and how each server-side rule is measured."""

    prometheus: HttpUrl = Field(description="the Prometheus that scrapes the target, e.g. http://prometheus:9090")
    baseline_prometheus: HttpUrl | None = Field(
        default=None, description="duet mode: the Prometheus of the base deployment (default: the same)"
    )
    baseline_matchers: str | None = Field(
        default=None, description="duet mode: label matchers that select the base deployment (default: matchers)"
    )
    headers: Annotated[dict[str, str], AfterValidator(check_headers)] = Field(
        default={}, description="sent to Prometheus; ${NAME} is the environment variable NAME (a token)"
    )
    matchers: str = Field(default="", description='label matchers for {matchers}, e.g. job="checkout"')
    step: Duration = Field(default=5.0, gt=0, description="resolution of the per-step series")
    series_window: Duration | None = Field(
        default=None,
        gt=0,
        description="{window} of each point of the series (default: 2 × step; at least 2 × the scrape interval)",
    )
    timeout: Duration = Field(default=5.0, gt=0, description="how long one query may take")
    queries: dict[str, Query] = Field(
        default={}, description="budget rule (database.query_p95_ms) → PromQL, replacing the default or adding one"
    )
    requests_query: Query | None = Field(
        default=DEFAULT_REQUESTS_QUERY,
        description="the server's request count by method and endpoint over {window}; null: not compared",
    )
    custom: list[CustomMetric] = []
    on_unmeasured: Literal["warn", "fail"] = Field(
        default="warn", description="a rule Prometheus could not measure: warn (shown) or fail the gate"
    )

    @field_validator("queries")
    @classmethod
    def _rules(cls, queries: dict[str, str]) -> dict[str, str]:
        for rule in queries:
            if not _RULE.fullmatch(rule):
                raise ValueError(
                    f"{rule!r} is not a budget rule; write section.key with a section of "
                    f"{', '.join(SECTIONS)}, e.g. database.query_p95_ms"
                )
        return queries

    @field_validator("custom")
    @classmethod
    def _unique(cls, custom: list[CustomMetric]) -> list[CustomMetric]:
        names = [metric.name for metric in custom]
        if twice := sorted({name for name in names if names.count(name) > 1}):
            raise ValueError(f"custom metric {twice[0]!r} is named twice; give each a name of its own")
        return custom

    @property
    def point_window(self) -> float:
        """``{window}`` of each point of a series: a rate needs two scrapes in it."""
        return self.series_window or 2 * self.step

    def query_for(self, rule: str) -> str | None:
        """The PromQL that measures ``rule`` (``database.query_p95_ms``): the file's, else the default."""
        return self.queries.get(rule) or DEFAULT_QUERIES.get(rule)


class ExportSettings(Strict):
    """``export:``: where the run's own RED metrics go besides ``<out>/metrics.prom`` (``ci_perf/export.py``)."""

    pushgateway: HttpUrl | None = Field(
        default=None, description="a Prometheus Pushgateway to push each run's metrics to (job ci-perf)"
    )
    timeout: Duration = Field(default=5.0, gt=0, le=60, description="how long each step of the push may take")


def unit_of(rule: str) -> str:
    """How a server-side rule's value reads: ms, % or a plain number."""
    key = rule.rsplit(".", 1)[-1]
    if key == "slow_query_threshold_ms" or key.endswith(("_percent", "_utilization", "_threshold")):
        return "%"
    return "ms" if key.endswith("_ms") else ""


def le_pattern(threshold_ms: float) -> str:
    """A regular expression for the ``le`` label text of the bucket at ``threshold_ms`` (``0.1``, ``1`` or ``1.0``)."""
    seconds = threshold_ms / 1000
    text = repr(seconds).removesuffix(".0")
    return re.escape(text) + (r"0*" if "." in text else r"(\.0*)?")
