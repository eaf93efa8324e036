"""Server-side metrics over a run's measured window, and the check of their PromQL before the load.

What is measured: each rule of ``performance_budget.database``/``external_services`` (its query from
``server_metrics.queries`` or ``config.server.DEFAULT_QUERIES``), each ``server_metrics.custom``
metric, and the server's own request count per endpoint (``requests_query``).

How (README "Server-side budgets (Prometheus)"):

* the **run-level value** is the query evaluated as an instant query at the window's end, with
  ``{window}`` = the window's length: ``rate(x[{window}])`` then covers exactly the measured window
  (after warm-up, up to the end of the run);
* the **series** is the query through the range API from the window's start + ``step`` to its end,
  every ``step``, with ``{window}`` = ``series_window`` (2 × ``step`` unless set: a rate needs two
  scrapes in its range): each point covers the time just before it;
* a query that returns several series: the worst value counts (the largest, or the smallest for a
  custom metric with ``higher_is_worse: false``); NaN (no observations) is no data;
* every fault (unreachable, slow, an error answer, no data) makes that metric ``not measured: <why>``
  and never stops the run; the gate's view of it is ``server_metrics.on_unmeasured``.

Queries run concurrently, so the added wall time is about one round trip to Prometheus.
"""

from __future__ import annotations

import string
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass
from typing import TypeVar

import httpx

from ci_perf.config import PerformanceBudget, ServerMetricsSettings, header_variable_problems
from ci_perf.config.server import le_pattern, unit_of
from ci_perf.errors import ConfigError
from ci_perf.results import RunResult, ServerMetric, ServerPoint
from ci_perf.servermetrics.prometheus import BadQuery, Prometheus, QueryFailed, Series

DEFAULT_SLOW_QUERY_MS = 100.0  # {slow_query_le} when the budget sets no slow_query_threshold_ms
NO_DATA = (
    "no data (the query matched no series with samples in the measured window; check the metric names, "
    "server_metrics.matchers and that Prometheus scrapes the service)"
)
CHECK_WINDOW_S = 60.0  # {window} when the queries are checked before the load (any range parses alike)
MAX_THREADS = 16
T = TypeVar("T")


@dataclass(frozen=True)
class Planned:
    """One metric to measure: its name, its PromQL with placeholders, how it reads."""

    name: str
    template: str
    unit: str
    higher_is_worse: bool = True
    setting: str = ""  # where the query comes from, for error messages


def planned(settings: ServerMetricsSettings, budget: PerformanceBudget) -> list[Planned]:
    """The budget's server-side rules, then the custom metrics (the gate checks each rule has a query)."""
    metrics = []
    for rule in budget.server_rules():
        template = settings.query_for(rule) or ""
        where = f"server_metrics.queries.{rule}" if rule in settings.queries else f"the default query of {rule}"
        metrics.append(Planned(rule, template, unit_of(rule), setting=where))
    for index, custom in enumerate(settings.custom):
        setting = f"server_metrics.custom[{index}].query"
        metrics.append(Planned(custom.name, custom.query, custom.unit, custom.higher_is_worse, setting))
    return metrics


def fill(template: str, *, window_s: float, matchers: str, budget: PerformanceBudget) -> str:
    """The PromQL with its placeholders filled in: ``{window}`` as milliseconds, ``{matchers}``, ``{slow_query_le}``."""
    threshold = (budget.database or {}).get("slow_query_threshold_ms", DEFAULT_SLOW_QUERY_MS)
    return (
        template.replace("{window}", f"{max(1, round(window_s * 1000))}ms")
        .replace("{matchers}", matchers)
        .replace("{slow_query_le}", le_pattern(threshold))
    )


def expanded_headers(settings: ServerMetricsSettings, environ: Mapping[str, str]) -> dict[str, str]:
    """``server_metrics.headers`` with ``${NAME}`` expanded; a variable that is not set is a ``ConfigError``."""
    if problems := header_variable_problems("server_metrics.headers", settings.headers, environ):
        raise ConfigError("; ".join(problems))
    return {name: string.Template(value).substitute(environ) for name, value in settings.headers.items()}


def _connect(
    settings: ServerMetricsSettings, environ: Mapping[str, str], transport: httpx.BaseTransport | None, *, base: bool
) -> Prometheus:
    url = (settings.baseline_prometheus or settings.prometheus) if base else settings.prometheus
    return Prometheus(url, headers=expanded_headers(settings, environ), timeout=settings.timeout, transport=transport)


def _parallel(calls: Sequence[Callable[[], T]]) -> list[T]:
    if not calls:
        return []
    with ThreadPoolExecutor(max_workers=min(MAX_THREADS, len(calls))) as pool:
        return list(pool.map(lambda call: call(), calls))


def check_queries(
    settings: ServerMetricsSettings,
    budget: PerformanceBudget,
    *,
    environ: Mapping[str, str],
    now: float,
    transport: httpx.BaseTransport | None = None,
) -> str | None:
    """Ask Prometheus to evaluate every query once, before the load: one that does not parse is a
    ``ConfigError`` (exit 2) naming the setting and Prometheus's parse error. A Prometheus that cannot be
    asked is no config error: the warning to print is returned (its metrics will say why they are missing).
    """
    metrics = planned(settings, budget)
    if settings.requests_query:
        metrics.append(Planned("requests", settings.requests_query, "", setting="server_metrics.requests_query"))
    with _connect(settings, environ, transport, base=False) as prometheus:
        outcomes = _parallel([_checker(prometheus, metric, settings, budget, now) for metric in metrics])
    bad = [
        f"{metric.setting}: Prometheus cannot parse it ({reason})"
        for metric, (kind, reason) in zip(metrics, outcomes, strict=True)
        if kind == "bad"
    ]
    if bad:
        raise ConfigError("; ".join(bad) + "; fix the PromQL (try it in Prometheus's expression browser)")
    failed = [reason for kind, reason in outcomes if kind == "failed"]
    return f"server_metrics: the queries were not checked: {failed[0]}" if failed else None


def _checker(
    prometheus: Prometheus, metric: Planned, settings: ServerMetricsSettings, budget: PerformanceBudget, now: float
) -> Callable[[], tuple[str, str]]:
    expr = fill(metric.template, window_s=CHECK_WINDOW_S, matchers=settings.matchers, budget=budget)

    def check() -> tuple[str, str]:
        try:
            prometheus.instant(expr, at=now)
        except BadQuery as exc:
            return "bad", exc.reason
        except QueryFailed as exc:
            return "failed", exc.reason
        return "ok", ""

    return check


def with_server_metrics(
    result: RunResult,
    settings: ServerMetricsSettings,
    budget: PerformanceBudget,
    *,
    environ: Mapping[str, str],
    transport: httpx.BaseTransport | None = None,
) -> RunResult:
    """``result`` with ``server`` and ``server_requests`` measured over its measured window."""
    metrics, requests = measure_server(
        settings,
        budget,
        start=result.meta.measured_from,
        end=result.meta.ended_at,
        duet=result.base is not None,
        environ=environ,
        transport=transport,
    )
    return result.model_copy(update={"server": metrics, "server_requests": requests})


def measure_server(
    settings: ServerMetricsSettings,
    budget: PerformanceBudget,
    *,
    start: float,
    end: float,
    duet: bool = False,
    environ: Mapping[str, str],
    transport: httpx.BaseTransport | None = None,
) -> tuple[list[ServerMetric], dict[str, float]]:
    """Each planned metric's run-level value and series from ``start`` to ``end`` (epoch seconds), and the
    server's request count per endpoint. In duet mode with ``baseline_prometheus`` or ``baseline_matchers``,
    the base deployment's run-level values too."""
    metrics = planned(settings, budget)
    with_base = duet and (settings.baseline_prometheus is not None or settings.baseline_matchers is not None)
    base_matchers = settings.baseline_matchers if settings.baseline_matchers is not None else settings.matchers
    with ExitStack() as clients:
        head = clients.enter_context(_connect(settings, environ, transport, base=False))
        own_base = with_base and settings.baseline_prometheus is not None  # else the same server, other matchers
        base = clients.enter_context(_connect(settings, environ, transport, base=True)) if own_base else head
        window = _Window(start=start, end=end, step=settings.step, point_window=settings.point_window, budget=budget)
        calls: list[Callable[[], object]] = []
        for metric in metrics:
            calls += [window.value(head, metric, settings.matchers), window.series(head, metric, settings.matchers)]
            calls.append(window.value(base, metric, base_matchers) if with_base else _nothing)
        if settings.requests_query:
            calls.append(window.requests(head, settings.requests_query, settings.matchers))
        answers = _parallel(calls)
    server = [
        _metric(metric, window, settings.matchers, answers[3 * i : 3 * i + 3]) for i, metric in enumerate(metrics)
    ]
    requests = answers[-1] if settings.requests_query else {}
    return server, requests if isinstance(requests, dict) else {}


def _nothing() -> None:
    return None


def _metric(metric: Planned, window: _Window, matchers: str, answers: Sequence[object]) -> ServerMetric:
    value, series, base = answers
    head_value, reason = value if isinstance(value, tuple) else (None, "not measured")
    base_value, base_reason = base if isinstance(base, tuple) else (None, None)
    return ServerMetric(
        name=metric.name,
        query=fill(metric.template, window_s=window.length, matchers=matchers, budget=window.budget),
        unit=metric.unit,
        value=head_value,
        reason=reason,
        series=series if isinstance(series, list) else [],
        base_value=base_value,
        base_reason=base_reason,
    )


@dataclass(frozen=True)
class _Window:
    """The measured window, and the calls that measure a metric over it."""

    start: float
    end: float
    step: float
    point_window: float
    budget: PerformanceBudget

    @property
    def length(self) -> float:
        return max(0.0, self.end - self.start)

    def value(
        self, prometheus: Prometheus, metric: Planned, matchers: str
    ) -> Callable[[], tuple[float | None, str | None]]:
        expr = fill(metric.template, window_s=self.length, matchers=matchers, budget=self.budget)

        def run() -> tuple[float | None, str | None]:
            if self.length <= 0:
                return None, "not measured: the measured window is empty"
            try:
                return _worst(prometheus.instant(expr, at=self.end), higher_is_worse=metric.higher_is_worse)
            except QueryFailed as exc:
                return None, f"not measured: {exc.reason}"

        return run

    def series(self, prometheus: Prometheus, metric: Planned, matchers: str) -> Callable[[], list[ServerPoint]]:
        expr = fill(metric.template, window_s=self.point_window, matchers=matchers, budget=self.budget)

        def run() -> list[ServerPoint]:
            first = min(self.start + self.step, self.end)
            try:
                found = prometheus.range(expr, start=first, end=self.end, step=self.step)
            except QueryFailed:
                return []  # the run-level value says why; a series is an illustration
            return _combined(found, higher_is_worse=metric.higher_is_worse)

        return run

    def requests(self, prometheus: Prometheus, template: str, matchers: str) -> Callable[[], dict[str, float]]:
        expr = fill(template, window_s=self.length, matchers=matchers, budget=self.budget)

        def run() -> dict[str, float]:
            try:
                found = prometheus.instant(expr, at=self.end)
            except QueryFailed:
                return {}
            counts: dict[str, float] = {}
            for series in found:
                name = f"{series.labels.get('method', '').upper()} {series.labels.get('endpoint', '')}".strip()
                if series.points and series.points[-1][1] >= 0 and name:
                    counts[name] = counts.get(name, 0.0) + series.points[-1][1]
            return counts

        return run


def _worst(found: list[Series], *, higher_is_worse: bool) -> tuple[float | None, str | None]:
    values = [value for series in found for _, value in series.points]
    if not values:
        return None, f"not measured: {NO_DATA}"
    worst = max(values) if higher_is_worse else min(values)
    if worst in (float("inf"), float("-inf")):
        return None, "not measured: the value lies beyond the histogram's highest finite bucket (+Inf)"
    return worst, None


def _combined(found: list[Series], *, higher_is_worse: bool) -> list[ServerPoint]:
    """One point per timestamp: the worst of the series there (infinite values left out)."""
    by_time: dict[float, list[float]] = {}
    for series in found:
        for at, value in series.points:
            if value not in (float("inf"), float("-inf")):
                by_time.setdefault(at, []).append(value)
    pick = max if higher_is_worse else min
    return [ServerPoint(at=at, value=pick(values)) for at, values in sorted(by_time.items())]
