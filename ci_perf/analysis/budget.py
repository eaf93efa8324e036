"""The performance budget: every rule of ``performance_budget`` checked against a run.

Semantics (also in the README):

* ``api_endpoints`` latency and error limits apply to **each endpoint** on its own.
* ``api_endpoints.throughput_rps`` applies to the **aggregate** (all endpoints together).
* ``endpoints`` overrides match ``"METHOD name"`` by glob (``*``, ``?``, ``[...]``),
  in file order; a later match overrides an earlier one field by field. A
  ``throughput_rps`` set in an override applies to that endpoint alone.
* Latency limits and the error rate are upper bounds (pass when measured ≤ limit);
  throughput is a lower bound (pass when measured ≥ limit).
* An endpoint with no requests after warm-up gives ``no-data``, which does not fail.
* ``default_error_rate_percent`` (1 % unless set; ``null`` disables it) limits the error rate of
  every endpoint that no ``error_rate_percent`` rule covers; its checks have ``source`` ``"default"``.
  Breakpoint runs (``result.capacity``) never get it: they push the service past its limits on purpose.
* ``max_task_exceptions`` (0 unless set; ``null`` disables it) limits the locustfile's unhandled task
  exceptions over the whole run; its check (endpoint ``(locustfile)``) is listed only when a task raised.
* ``database`` and ``external_services`` are checked against the run's server-side metrics
  (``RunResult.server``, measured through Prometheus; ``source`` ``"server_metrics"``, endpoint the
  section), as are ``server_metrics.custom`` metrics (endpoint ``custom``). A rule Prometheus could
  not measure is listed as unmeasured with its reason (``on_unmeasured: warn``), or fails as a check
  without a value (``on_unmeasured: fail``). Without ``server_metrics`` they stay not measured.
"""

from __future__ import annotations

from fnmatch import fnmatchcase
from typing import Literal

from ci_perf.config import EndpointBudget, PerformanceBudget, ServerMetricsSettings
from ci_perf.config.server import unit_of
from ci_perf.models import Frozen
from ci_perf.results import AGGREGATE, MEASURES, RunResult, Stats

NOT_MEASURED = "not measured: needs a server-metrics source"
DEFAULT_SOURCE = "default"  # BudgetCheck.source of the default error-rate limit
LOCUSTFILE = "(locustfile)"  # BudgetCheck.endpoint of the task-exceptions rule: the run's code, no endpoint
SERVER_SOURCE = "server_metrics"  # BudgetCheck.source of a server-side rule
CUSTOM = "custom"  # BudgetCheck.endpoint of a server_metrics.custom metric
NO_SERVER_METRICS = "not measured: this run has no server metrics (server_metrics was not set when it ran)"
# server-side rule → how tables name what it measures
SERVER_LABELS: dict[str, str] = {
    "database.query_p95_ms": "query p95",
    "database.query_p99_ms": "query p99",
    "database.connection_pool_utilization": "pool in use (peak)",
    "database.slow_query_threshold_ms": "slow queries",
    "external_services.p95_latency_ms": "call p95",
    "external_services.timeout_ms": "call p99 (timeout)",
    "external_services.retry_count": "retries",
    "external_services.circuit_breaker_threshold": "call failures",
}

# budget field → the Stats field it limits (an upper bound where higher is worse, else a lower bound)
RULES: dict[str, str] = {
    "p50_latency_ms": "p50_ms",
    "p95_latency_ms": "p95_ms",
    "p99_latency_ms": "p99_ms",
    "max_latency_ms": "max_ms",
    "error_rate_percent": "error_rate_percent",
    "throughput_rps": "rps",
}

RuleStatus = Literal["pass", "fail", "no-data"]


class BudgetCheck(Frozen):
    endpoint: str
    rule: str
    label: str
    unit: str
    limit: float
    measured: float | None
    upper_bound: bool
    status: RuleStatus
    source: str  # "api_endpoints", the override's glob, DEFAULT_SOURCE, "max_task_exceptions" or SERVER_SOURCE
    reason: str | None = None  # a server-side rule failed for want of a value (on_unmeasured: fail): why

    @property
    def by_default(self) -> bool:
        """Whether the limit is the default error-rate limit (no rule of the budget set it)."""
        return self.source == DEFAULT_SOURCE


class UnmeasuredRule(Frozen):
    section: str
    rule: str
    limit: float
    reason: str = NOT_MEASURED


class BudgetReport(Frozen):
    checks: list[BudgetCheck] = []
    unmeasured: list[UnmeasuredRule] = []
    unmatched_patterns: list[str] = []
    default_error_rate_percent: float | None = None  # the budget's default error limit (None: disabled)
    max_task_exceptions: int | None = 0  # task exceptions allowed (None: not a rule)

    @property
    def violations(self) -> list[BudgetCheck]:
        return [c for c in self.checks if c.status == "fail"]

    @property
    def passed(self) -> bool:
        return not self.violations

    @property
    def default_checks(self) -> list[BudgetCheck]:
        return [c for c in self.checks if c.by_default]


def effective_budget(
    budget: PerformanceBudget, endpoint: str, *, with_default: bool = True
) -> tuple[dict[str, float], dict[str, str]]:
    """The limits that apply to one endpoint, and where each came from.

    Without an ``error_rate_percent`` rule for the endpoint, the default error limit applies
    (``with_default`` and ``budget.default_error_rate_percent`` not null).
    """
    limits: dict[str, float] = {}
    sources: dict[str, str] = {}
    _apply(limits, sources, budget.api_endpoints, "api_endpoints", skip={"throughput_rps"})
    for pattern, override in budget.endpoints.items():
        if fnmatchcase(endpoint, pattern):
            _apply(limits, sources, override, pattern, skip=set())
    default = budget.default_error_rate_percent
    if with_default and default is not None and "error_rate_percent" not in limits:
        limits["error_rate_percent"] = default
        sources["error_rate_percent"] = DEFAULT_SOURCE
    return limits, sources


def _apply(
    limits: dict[str, float],
    sources: dict[str, str],
    block: EndpointBudget,
    source: str,
    *,
    skip: set[str],
) -> None:
    for field, value in block.model_dump(exclude_none=True).items():
        if field not in skip:
            limits[field] = value
            sources[field] = source


def _check(endpoint: str, stats: Stats, field: str, limit: float, source: str) -> BudgetCheck:
    stat = RULES[field]
    label, unit, upper = MEASURES[stat]
    measured: float | None = getattr(stats, stat)
    if stats.requests == 0 or measured is None:
        status: RuleStatus = "no-data"
    elif upper:
        status = "pass" if measured <= limit else "fail"
    else:
        status = "pass" if measured >= limit else "fail"
    return BudgetCheck(
        endpoint=endpoint,
        rule=field,
        label=label,
        unit=unit,
        limit=limit,
        measured=measured,
        upper_bound=upper,
        status=status,
        source=source,
    )


def _exceptions_check(budget: PerformanceBudget, raised: int) -> BudgetCheck:
    """The locustfile's unhandled task exceptions against ``max_task_exceptions``."""
    limit = budget.max_task_exceptions or 0
    return BudgetCheck(
        endpoint=LOCUSTFILE,
        rule="max_task_exceptions",
        label="task exceptions",
        unit="",
        limit=limit,
        measured=raised,
        upper_bound=True,
        status="pass" if raised <= limit else "fail",
        source="max_task_exceptions",
    )


def _server_limits(
    budget: PerformanceBudget, server: ServerMetricsSettings | None
) -> list[tuple[str, float, str, bool]]:
    """(name, limit, unit, higher is worse) of each server-side rule: the budget's, then the custom metrics'."""
    limits = [(rule, limit, unit_of(rule), True) for rule, limit in budget.server_rules().items()]
    return limits + [(c.name, c.limit, c.unit, c.higher_is_worse) for c in (server.custom if server else [])]


def server_checks(
    budget: PerformanceBudget, result: RunResult, server: ServerMetricsSettings | None
) -> tuple[list[BudgetCheck], list[UnmeasuredRule]]:
    """The server-side rules against ``result.server``; limits, units and directions come from the gate."""
    if server is None and not result.server:  # no server-metrics source: every rule as written, not measured
        return [], [
            UnmeasuredRule(section=section, rule=rule, limit=limit)
            for section, block in (("database", budget.database), ("external_services", budget.external_services))
            for rule, limit in (block or {}).items()
        ]
    measured = {metric.name: metric for metric in result.server}
    checks: list[BudgetCheck] = []
    unmeasured: list[UnmeasuredRule] = []
    for name, limit, unit, upper in _server_limits(budget, server):
        section, _, rule = name.rpartition(".")
        metric = measured.get(name)
        value = metric.value if metric else None
        if value is None:
            reason = (metric.reason if metric else None) or NO_SERVER_METRICS
            if server is None or server.on_unmeasured == "warn":
                unmeasured.append(UnmeasuredRule(section=section or CUSTOM, rule=rule, limit=limit, reason=reason))
                continue
        else:
            reason = None
        passed = value is not None and (value <= limit if upper else value >= limit)
        checks.append(
            BudgetCheck(
                endpoint=section or CUSTOM,
                rule=rule,
                label=SERVER_LABELS.get(name, rule),
                unit=unit,
                limit=limit,
                measured=value,
                upper_bound=upper,
                status="pass" if passed else "fail",
                source=SERVER_SOURCE,
                reason=reason,
            )
        )
    return checks, unmeasured


def check_budget(
    budget: PerformanceBudget, result: RunResult, server: ServerMetricsSettings | None = None
) -> BudgetReport:
    """Every rule of ``budget`` against ``result``; ``server`` is the gate's ``server_metrics`` (custom metrics,
    ``on_unmeasured``)."""
    checks: list[BudgetCheck] = []
    matched: set[str] = set()
    with_default = result.capacity is None
    for endpoint in result.endpoints:
        limits, sources = effective_budget(budget, endpoint.name, with_default=with_default)
        matched.update(p for p in budget.endpoints if fnmatchcase(endpoint.name, p))
        checks.extend(_check(endpoint.name, endpoint.stats, f, limits[f], sources[f]) for f in RULES if f in limits)
    throughput = budget.api_endpoints.throughput_rps
    if throughput is not None:
        checks.append(_check(AGGREGATE, result.aggregate, "throughput_rps", throughput, "api_endpoints"))
    if budget.max_task_exceptions is not None and result.exceptions:
        checks.append(_exceptions_check(budget, sum(e.count for e in result.exceptions)))
    server_rules, unmeasured = server_checks(budget, result, server)
    checks.extend(server_rules)
    return BudgetReport(
        checks=checks,
        unmeasured=unmeasured,
        unmatched_patterns=[p for p in budget.endpoints if p not in matched],
        default_error_rate_percent=budget.default_error_rate_percent,
        max_task_exceptions=budget.max_task_exceptions,
    )
