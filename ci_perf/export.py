"""The run's RED metrics per endpoint for Prometheus: ``<out>/metrics.prom`` and a Pushgateway push.

Every run writes ``metrics.prom`` in OpenMetrics text: per endpoint the requests and failures of the
measured window (counters), the throughput and error ratio (gauges) and the latency (a summary with
quantiles 0.5 … 0.999, its count and sum), labelled with the endpoint and the run's repository,
branch, commit and scenario (``RunMeta.scenario_key``: what ci-perf compares runs by). Endpoint
names are the pull request's text: label values are escaped as the format requires (backslash,
double quote, newline) and written as UTF-8.

With ``export.pushgateway`` the same samples go to a Pushgateway (the classic text format, which
every Pushgateway parses) under ``job="ci-perf"``, grouped by repository, branch and scenario
(base64 in the URL: values may hold ``/``). A push replaces its group, so the Pushgateway keeps each
branch's latest run (the ``commit`` label says which) rather than growing by one group per commit.
A failed push is a warning, never a failed run.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, TextIO
from urllib.parse import urlsplit, urlunsplit

import httpx

from ci_perf.config import ExportSettings
from ci_perf.formatting import one_line
from ci_perf.results import RunResult, Stats

METRICS_FILE = "metrics.prom"
JOB = "ci-perf"
RUN_LABELS = ("repository", "branch", "commit", "scenario")
GROUPING = ("repository", "branch", "scenario")
OPENMETRICS_TYPE = "application/openmetrics-text; version=1.0.0; charset=utf-8"
TEXT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
QUANTILES = (("0.5", "p50_ms"), ("0.9", "p90_ms"), ("0.95", "p95_ms"), ("0.99", "p99_ms"), ("0.999", "p999_ms"))


@dataclass(frozen=True)
class _Family:
    name: str
    kind: Literal["counter", "gauge", "summary"]
    unit: str
    help: str


REQUESTS = _Family("ci_perf_requests", "counter", "", "Requests in the run's measured window (after warm-up).")
FAILURES = _Family("ci_perf_failures", "counter", "", "Failed requests (unfinished ones included).")
THROUGHPUT = _Family("ci_perf_throughput_requests_per_second", "gauge", "", "Requests over the measured window.")
ERROR_RATIO = _Family("ci_perf_error_ratio", "gauge", "", "Failures over requests (0 to 1).")
DURATION = _Family("ci_perf_request_duration_seconds", "summary", "seconds", "Request latency in the measured window.")
DURATION_MAX = _Family("ci_perf_request_duration_max_seconds", "gauge", "seconds", "The slowest request.")
RUN_END = _Family("ci_perf_run_end_timestamp_seconds", "gauge", "seconds", "When the measured window ended.")


def run_labels(result: RunResult, *, repository: str | None) -> dict[str, str]:
    """The labels every series of a run carries (a value unknown is empty, i.e. the label is absent)."""
    meta = result.meta
    values = (repository, meta.git_branch, meta.git_sha, meta.scenario_key)
    return {name: value or "" for name, value in zip(RUN_LABELS, values, strict=True)}


def render_metrics(result: RunResult, labels: Mapping[str, str], *, openmetrics: bool = True) -> str:
    """The run's RED metrics per endpoint: OpenMetrics text, or the classic text format (``openmetrics=False``)."""
    lines: list[str] = []
    per_endpoint = [(e.name, e.stats) for e in result.endpoints]
    for family in (REQUESTS, FAILURES, THROUGHPUT, ERROR_RATIO, DURATION, DURATION_MAX):
        lines += _header(family, openmetrics=openmetrics)
        for endpoint, stats in per_endpoint:
            lines += _samples(family, {"endpoint": endpoint, **labels}, stats)
    lines += _header(RUN_END, openmetrics=openmetrics)
    lines.append(_sample(RUN_END.name, labels, result.meta.ended_at))
    if openmetrics:
        lines.append("# EOF")
    return "\n".join(lines) + "\n"


def _header(family: _Family, *, openmetrics: bool) -> list[str]:
    # the classic format names a counter by its sample (``_total``); OpenMetrics by the family
    name = family.name if openmetrics or family.kind != "counter" else family.name + "_total"
    lines = [f"# HELP {name} {family.help}", f"# TYPE {name} {family.kind}"]
    return lines + ([f"# UNIT {name} {family.unit}"] if openmetrics and family.unit else [])


def _samples(family: _Family, labels: Mapping[str, str], stats: Stats) -> Iterator[str]:
    name = family.name
    if family is REQUESTS:
        yield _sample(name + "_total", labels, stats.requests)
    elif family is FAILURES:
        yield _sample(name + "_total", labels, stats.failures)
    elif family is THROUGHPUT:
        yield _sample(name, labels, stats.rps)
    elif family is ERROR_RATIO:
        yield _sample(name, labels, stats.failures / stats.requests if stats.requests else 0.0)
    elif family is DURATION_MAX:
        if stats.max_ms is not None:
            yield _sample(name, labels, stats.max_ms / 1000)
    else:
        for quantile, field in QUANTILES:
            value = getattr(stats, field)
            if value is not None:
                yield _sample(name, {**labels, "quantile": quantile}, value / 1000)
        yield _sample(name + "_count", labels, stats.requests)
        yield _sample(name + "_sum", labels, (stats.mean_ms or 0.0) * stats.requests / 1000)


def _sample(name: str, labels: Mapping[str, str], value: float) -> str:
    shown = ",".join(f'{key}="{escape_label_value(text)}"' for key, text in labels.items() if text)
    number = str(value) if isinstance(value, int) else repr(float(value))
    return f"{name}{{{shown}}} {number}" if shown else f"{name} {number}"


def escape_label_value(text: str) -> str:
    """A label value as both text formats write it: backslash, double quote and newline escaped.

    A carriage return is written as a newline: the formats allow it raw, but a reader in text mode
    (Python's universal newlines) would end the line there, and what follows could read as a series.
    """
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def write_metrics(result: RunResult, labels: Mapping[str, str], out_dir: Path) -> Path:
    """``<out_dir>/metrics.prom`` (OpenMetrics, UTF-8: the result's models admit no lone surrogates)."""
    path = out_dir / METRICS_FILE
    path.write_text(render_metrics(result, labels), encoding="utf-8")
    return path


def group_url(pushgateway: str, labels: Mapping[str, str]) -> str:
    """``<pushgateway>/metrics/job/ci-perf/<label>@base64/<value>…`` for the grouping labels."""
    path = "".join(
        f"/{name}@base64/{base64.urlsafe_b64encode(labels.get(name, '').encode()).decode() or '='}" for name in GROUPING
    )
    return f"{pushgateway.rstrip('/')}/metrics/job/{JOB}{path}"


def push_metrics(
    result: RunResult,
    labels: Mapping[str, str],
    *,
    pushgateway: str,
    timeout_s: float,
    transport: httpx.BaseTransport | None = None,
) -> str | None:
    """PUT the run's group to the Pushgateway; None when it took it, else the warning (one line) saying why."""
    body = render_metrics(result, labels, openmetrics=False).encode()
    where = f"metrics not pushed to the Pushgateway at {shown_url(pushgateway)}"
    try:
        with httpx.Client(timeout=timeout_s, transport=transport) as client:
            response = client.put(group_url(pushgateway, labels), content=body, headers={"Content-Type": TEXT_TYPE})
    except httpx.TimeoutException:
        return f"{where}: no answer within {timeout_s:g} s"
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        return f"{where}: {one_line(exc, 200) or type(exc).__name__}"
    if not response.is_success:
        answer = one_line(response.text, 200)
        detail = f" ({answer})" if answer else ""
        return f"{where}: it answered {response.status_code} {response.reason_phrase}{detail}"
    return None


def shown_url(url: str) -> str:
    """A URL as the log may show it: without user and password."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))


def export_run(
    result: RunResult, settings: ExportSettings, *, out_dir: Path, repository: str | None, echo: TextIO | None
) -> list[str]:
    """Write ``metrics.prom`` and push it where ``settings`` say; the warnings (for the log and the report)."""
    labels = run_labels(result, repository=repository)
    warnings = []
    try:
        write_metrics(result, labels, out_dir)
    except OSError as exc:
        warnings.append(f"{METRICS_FILE} not written: {exc.strerror or exc}")
    if settings.pushgateway:
        warning = push_metrics(result, labels, pushgateway=settings.pushgateway, timeout_s=settings.timeout)
        warnings += [warning] if warning else []
    if echo is not None:
        for warning in warnings:
            echo.write(f"ci-perf: warning: {warning}\n")
        echo.flush()
    return warnings
