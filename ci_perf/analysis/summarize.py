"""Windows → totals: the collector's raw windows become a ``RunResult``.

Pure: no I/O, no clock. Warm-up windows stay in the result (the statistics may
want them) but every total covers only the measured window: from the end of the
warm-up (on the window grid) to the end of the run, when the collector cut off
what was still in flight. Throughput is the requests in that window over its
length, whatever the requests' own timing. Requests to hosts other than the
target are summarised apart (``RunResult.other_hosts``), out of the aggregate.
"""

from __future__ import annotations

import hashlib
import json
import math
import statistics
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from ci_perf import sketches
from ci_perf.config import LoadSettings
from ci_perf.profiles import limits_crossed
from ci_perf.results import (
    OTHER_MESSAGES,
    ArmResult,
    Capacity,
    CollectedEndpointWindow,
    CollectedRun,
    CpuSample,
    EndpointResult,
    EndpointWindow,
    ErrorCount,
    GeneratorHealth,
    LoadMeta,
    OpenModelResult,
    RunMeta,
    RunResult,
    Stats,
    StepResult,
    is_measured,
)
from ci_perf.sketches import Sketch

SATURATED_CPU_PERCENT = 90.0
DUET_RPS_TOLERANCE = 0.05
RATE_TOLERANCE = 0.05
SHAPE_SETTINGS = {
    "arrival_rate", "stages", "stress_factors", "spike_users", "step_users", "step_duration", "max_users", "break_on"
}  # fmt: skip  # an open-model run that misses its arrival rate by more is unreliable
TOP_ERRORS = 5
QUANTILES = (0.5, 0.9, 0.95, 0.99, 0.999)
# A request in flight when the run ended is unfinished once it waited longer than every answer of its endpoint,
# and longer than a second: a stall, not a request that the end of the run happened to cut off (docs/STATISTICS.md).
UNFINISHED_FLOOR_MS = 1000.0
UNFINISHED_MESSAGE = "unfinished: no response when the run ended (the wait so far counts as a latency lower bound)"


def compute_stats(windows: Sequence[EndpointWindow], *, seconds: float) -> Stats:
    latency = sketches.merge(w.latency for w in windows)
    requests = sum(w.requests for w in windows)
    failures = sum(w.failures for w in windows)
    unfinished = sum(w.unfinished for w in windows)
    return stats_from(latency, requests=requests, failures=failures, seconds=seconds, unfinished=unfinished)


def stats_from(latency: Sketch, *, requests: int, failures: int, seconds: float, unfinished: int = 0) -> Stats:
    p50, p90, p95, p99, p999 = sketches.quantiles(latency, QUANTILES)
    return Stats(
        requests=requests,
        failures=failures,
        unfinished=unfinished,
        error_rate_percent=100.0 * failures / requests if requests else 0.0,
        rps=requests / seconds if seconds > 0 else 0.0,
        mean_ms=latency.sum / latency.count if latency.count else None,
        p50_ms=p50,
        p90_ms=p90,
        p95_ms=p95,
        p99_ms=p99,
        p999_ms=p999,
        max_ms=latency.max if latency.count else None,
        winsorised_mean_ms=sketches.winsorised_mean(latency),
    )


def top_errors(windows: Iterable[EndpointWindow], limit: int = TOP_ERRORS) -> list[ErrorCount]:
    """The most frequent failure messages; the collector's catch-all is left to the report's "other" row."""
    counts: Counter[str] = Counter()
    for window in windows:
        for error in window.errors:
            if error.message != OTHER_MESSAGES:
                counts[error.message] += error.count
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    return [ErrorCount(message=m, count=c) for m, c in ranked[:limit]]


def scenario_keys(load: LoadSettings, endpoint_names: Iterable[str], *, duet: bool = False) -> tuple[str, str]:
    """(scenario key, load key): hashes of the load settings with and without the endpoint set.

    Runs are only compared when their load was the same; the scenario key also
    asks for the same endpoints, the load key is the fallback when they changed.
    A duet run (each user also loads the base deployment) is another load.
    """
    shape: dict[str, object] = load.model_dump(
        include={"profile", "users", "spawn_rate", "duration", "warmup", "think_time"}
    )
    # the shape's own settings count only where set, so that older runs keep their keys
    shape |= load.model_dump(include=SHAPE_SETTINGS & load.model_fields_set, mode="json")
    if duet:
        shape["duet"] = True
    load_key = _digest(shape)
    return _digest({**shape, "endpoints": sorted(set(endpoint_names))}), load_key


def _digest(value: object) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()[:12]


def generator_health(
    samples: Sequence[CpuSample], *, warnings: Sequence[str], since: float
) -> tuple[GeneratorHealth, str | None]:
    """A process whose median CPU after warm-up reached 90 % of a core was saturated.

    Returns the health and, when saturated, the sentence that makes the run unreliable.
    """
    by_process: dict[str, list[float]] = defaultdict(list)
    for sample in samples:
        if sample.at >= since:
            by_process[sample.process].append(sample.percent)
    medians = {name: statistics.median(values) for name, values in by_process.items() if values}
    every = [p for values in by_process.values() for p in values]
    saturated = [name for name, median in medians.items() if median >= SATURATED_CPU_PERCENT]
    reason = (
        f"load generator CPU saturated ({', '.join(sorted(saturated))}: median ≥ {SATURATED_CPU_PERCENT:.0f}%); "
        "the run measured Locust, not the target; raise load.processes or add workers"
        if saturated
        else None
    )
    workers = {name for name in by_process if name.startswith("worker")}
    health = GeneratorHealth(
        processes=max(1, len(workers)),
        cpu_median_percent=max(medians.values()) if medians else None,
        cpu_max_percent=max(every) if every else None,
        saturated=bool(saturated),
        warnings=[*warnings, reason] if reason else list(warnings),
    )
    return health, reason


def summarize_run(
    collected: CollectedRun,
    *,
    load: LoadSettings,
    target: str,
    tool_version: str,
    git_sha: str | None = None,
    git_branch: str | None = None,
    baseline_target: str | None = None,
    warnings: Sequence[str] = (),
    break_on: dict[str, float] | None = None,
) -> RunResult:
    """Build the public result: per-endpoint and aggregate totals after warm-up, plus all windows.

    In duet mode (``baseline_target``) the base deployment's windows become ``RunResult.base``.
    """
    if not collected.windows:
        raise ValueError("the run recorded no requests")
    span = _span(collected, warmup=load.warmup)
    head = [w for w in collected.windows if w.arm == "head" and w.host is None]
    endpoints, measured_all = _arm(head, measured_from=span.measured_from, measured_s=span.measured_s)
    aggregate = compute_stats(measured_all, seconds=span.measured_s)
    base = None if baseline_target is None else _base_arm(collected, target=baseline_target, span=span)
    open_model = _open_model(collected, ended_at=span.last)
    capacity = _capacity(collected, head, limits=break_on if load.profile == "breakpoint" else None, ended_at=span.last)
    scenario_key, load_key = scenario_keys(load, {e.name for e in endpoints}, duet=base is not None)
    health, saturation = generator_health(
        collected.cpu, warnings=[*collected.cpu_warnings, *warnings], since=span.measured_from
    )
    reasons = [saturation] if saturation else []
    reasons += [] if span.warmup_done else [_warmup_not_done(span, warmup=load.warmup)]
    reasons += ([] if base is None else _duet_problems(aggregate, base.aggregate)) + _open_model_problems(open_model)
    reasons += [] if measured_all else ["no requests after the warm-up; lengthen load.duration or shorten load.warmup"]
    meta = RunMeta(
        tool_version=tool_version,
        locust_version=collected.locust_version,
        target=target,
        started_at=span.first,
        ended_at=span.last,
        duration_s=span.last - span.first,
        measured_s=span.measured_s,
        measured_from=span.measured_from,
        warmup_s=load.warmup,
        window_s=collected.window_s,
        load=LoadMeta.model_validate({**load.model_dump(), "peak_users": collected.peak_users}),
        peak_users=collected.peak_users,
        scenario_key=scenario_key,
        load_key=load_key,
        git_sha=git_sha,
        git_branch=git_branch,
        baseline_target=baseline_target,
        generator=health,
        reliable=not reasons,
        unreliable_reasons=reasons,
    )
    other_hosts = _other_hosts(collected, measured_from=span.measured_from, measured_s=span.measured_s)
    return RunResult(
        meta=meta, aggregate=aggregate, endpoints=endpoints, other_hosts=other_hosts, exceptions=collected.exceptions,
        base=base, capacity=capacity, open_model=open_model,
    )  # fmt: skip


@dataclass(frozen=True)
class _Span:
    """When the run began and ended, and the measured window: from the end of the warm-up to the end."""

    first: float  # the first request
    last: float  # the end of the run: the collector's stop (older files: the last response)
    measured_from: float  # on the window grid
    warmup_done: bool  # False: the run ended within the warm-up, which is then measured too

    @property
    def measured_s(self) -> float:
        return max(self.last - max(self.measured_from, self.first), 0.0)


def _span(collected: CollectedRun, *, warmup: float) -> _Span:
    """The measured window; never empty: a run that ended within its warm-up is measured whole."""
    first = min(w.first_start for w in collected.windows)
    last = max(w.last_end for w in collected.windows)
    if collected.stopped_at is not None:
        last = max(collected.stopped_at, first)  # throughput counts the quiet end of a run too
    window_s = collected.window_s
    began = first if collected.started_at is None else min(collected.started_at, first)  # the run clock
    whole = math.floor(first / window_s) * window_s
    measured_from = math.ceil((began + warmup) / window_s - 1e-9) * window_s if warmup > 0 else whole
    if measured_from >= last:
        return _Span(first=first, last=last, measured_from=whole, warmup_done=False)
    return _Span(first=first, last=last, measured_from=measured_from, warmup_done=True)


def _warmup_not_done(span: _Span, *, warmup: float) -> str:
    return (
        f"the run ended {span.last - span.first:.1f} s after its first request, within the {warmup:g} s warm-up: "
        "the totals include the warm-up; lengthen load.duration or shorten load.warmup"
    )


def _base_arm(collected: CollectedRun, *, target: str, span: _Span) -> ArmResult:
    """Duet mode: the base deployment's windows, summarised like the head's (other hosts left out)."""
    windows = [w for w in collected.windows if w.arm == "base" and w.host is None]
    endpoints, measured = _arm(windows, measured_from=span.measured_from, measured_s=span.measured_s)
    return ArmResult(target=target, aggregate=compute_stats(measured, seconds=span.measured_s), endpoints=endpoints)


def _arm(
    windows: Sequence[CollectedEndpointWindow], *, measured_from: float, measured_s: float
) -> tuple[list[EndpointResult], list[EndpointWindow]]:
    """One arm's endpoints (all windows kept, totals after the warm-up) and its measured windows."""
    by_endpoint: dict[str, list[CollectedEndpointWindow]] = defaultdict(list)
    for window in windows:
        by_endpoint[window.endpoint].append(window)
    endpoints = []
    measured_all: list[EndpointWindow] = []
    for name in sorted(by_endpoint):
        ordered = sorted(by_endpoint[name], key=lambda w: w.start)
        after_ms = unfinished_after_ms(ordered)
        kept = [settle_in_flight(w, after_ms=after_ms) for w in ordered]
        measured = [w for w in kept if is_measured(w.start, measured_from)]
        measured_all.extend(measured)
        endpoints.append(
            EndpointResult(
                name=name,
                stats=compute_stats(measured, seconds=measured_s),
                errors=top_errors(measured),
                windows=kept,
            )
        )
    return endpoints, measured_all


def unfinished_after_ms(windows: Sequence[EndpointWindow]) -> float:
    """How long a request of this endpoint may have waited at the end of the run without being unfinished."""
    slowest = max((w.latency.max for w in windows if w.latency.count), default=0.0)
    return max(slowest, UNFINISHED_FLOOR_MS)


def settle_in_flight(window: CollectedEndpointWindow, *, after_ms: float) -> EndpointWindow:
    """A collected window as the result keeps it: the requests in flight at the end counted in.

    Each was sent, so it is a request. One that waited longer than ``after_ms`` is unfinished: a failure, its
    wait a latency lower bound. A younger one was cut off by the end of the run; its outcome is unknown.
    """
    overdue = [waited for waited in window.in_flight_ms if waited > after_ms]
    latency, errors = window.latency, window.errors
    if overdue:
        latency = sketches.merge([latency, sketches.of_values(overdue)])
        errors = sorted(
            [*errors, ErrorCount(message=UNFINISHED_MESSAGE, count=len(overdue))], key=lambda e: (-e.count, e.message)
        )
    return EndpointWindow(
        start=window.start,
        requests=window.requests + len(window.in_flight_ms),
        failures=window.failures + len(overdue),
        latency=latency,
        errors=errors,
        unfinished=len(overdue),
    )


def _other_hosts(collected: CollectedRun, *, measured_from: float, measured_s: float) -> list[EndpointResult]:
    """Requests to hosts other than the target (the head arm's), per host and endpoint, like the endpoints."""
    by_host: dict[str, list[CollectedEndpointWindow]] = defaultdict(list)
    for window in collected.windows:
        if window.host is not None and window.arm == "head":
            by_host[window.host].append(window)
    found = []
    for host in sorted(by_host):
        endpoints, _ = _arm(by_host[host], measured_from=measured_from, measured_s=measured_s)
        found += [endpoint.model_copy(update={"host": host}) for endpoint in endpoints]
    return found


def _duet_problems(head: Stats, base: Stats) -> list[str]:
    """Both arms get every task's request, so their throughput must agree within 5 %."""
    if head.requests == 0 or base.requests == 0:
        return ["duet: one deployment received no requests after the warm-up"]
    gap = abs(head.rps - base.rps) / max(head.rps, base.rps)
    if gap > DUET_RPS_TOLERANCE:
        problem = (
            f"duet: the deployments were not loaded alike (head {head.rps:.1f} rps, base {base.rps:.1f} rps, "
            f"{100 * gap:.0f} % apart; at most {100 * DUET_RPS_TOLERANCE:.0f} %): one was failing or timing out"
        )
        return [problem]
    return []


def _open_model_problems(open_model: OpenModelResult | None) -> list[str]:
    """An open-model run that missed its arrival rate by more than 5 % measured a smaller load."""
    if open_model is None or abs(open_model.achieved_rps - open_model.target_rps) <= (
        RATE_TOLERANCE * open_model.target_rps
    ):
        return []
    problem = (
        f"open model: achieved {open_model.achieved_rps:.1f} rps of the {open_model.target_rps:.1f} rps asked "
        f"({open_model.dropped} starts dropped); raise load.users (the pool) or load.processes"
    )
    return [problem]


def _open_model(collected: CollectedRun, *, ended_at: float) -> OpenModelResult | None:
    counts = collected.open_model
    if counts is None or collected.started_at is None:
        return None
    seconds = max(ended_at - collected.started_at, 1e-9)
    scheduled = int(counts.get("scheduled", 0))
    dropped = int(counts.get("dropped", 0) + counts.get("unstarted", 0))
    return OpenModelResult(
        target_rps=counts.get("owed", 0.0) / seconds,
        achieved_rps=(scheduled - int(counts.get("dropped", 0))) / seconds,
        scheduled=scheduled + int(counts.get("unstarted", 0)),
        late=int(counts.get("late", 0)),
        dropped=dropped,
    )


def _capacity(
    collected: CollectedRun,
    windows: Sequence[CollectedEndpointWindow],
    *,
    limits: dict[str, float] | None,
    ended_at: float,
) -> Capacity | None:
    """Breakpoint runs (``limits`` set): each step judged on its settled second half; the capacity is
    the last step within the limits."""
    if not limits:
        return None
    steps = _judged_steps(collected, windows, limits=limits, ended_at=ended_at)
    first_bad = next((i for i, step in enumerate(steps) if not step.within_limits), None)
    if first_bad is None:
        top = steps[-1] if steps else None
        reason = (
            "held every step; raise load.max_users to find the breaking point"
            if steps
            else "no step lasted long enough to be judged; lengthen load.step_duration"
        )
        return Capacity(
            users=top.users if top else None,
            rps=top.rps if top else None,
            broke_at_users=None,
            reason=reason,
            limits=limits,
            steps=steps,
        )
    broken = steps[first_bad]
    if collected.broke is not None and broken.index == collected.broke.index:
        why = collected.broke.reason  # the shape stopped the run here, on Locust's numbers
    else:
        why = "; ".join(limits_crossed(limits, p95_ms=broken.p95_ms, error_rate_percent=broken.error_rate_percent))
    good = steps[first_bad - 1] if first_bad > 0 else None
    return Capacity(
        users=good.users if good else None,
        rps=good.rps if good else None,
        broke_at_users=broken.users,
        reason=f"broke at {broken.users} users: {why}" + ("" if good else " (already at the first step)"),
        limits=limits,
        steps=steps,
    )


def _judged_steps(
    collected: CollectedRun,
    windows: Sequence[CollectedEndpointWindow],
    *,
    limits: dict[str, float],
    ended_at: float,
) -> list[StepResult]:
    window_s = collected.window_s
    marks = sorted(collected.steps, key=lambda m: m.start)
    steps = []
    for number, mark in enumerate(marks):
        end = marks[number + 1].start if number + 1 < len(marks) else ended_at
        settled = mark.start + (end - mark.start) / 2
        # windows that end within the step and whose middle is in its settled half (steps begin on
        # Locust's 1-s shape ticks, so a step of 2 s may have none: it is then left out)
        inside = [w for w in windows if settled <= w.start + window_s / 2 and w.start + window_s <= end + 1e-9]
        if not inside:
            continue
        stats = compute_stats(inside, seconds=len({w.start for w in inside}) * window_s)
        within = not limits_crossed(limits, p95_ms=stats.p95_ms, error_rate_percent=stats.error_rate_percent)
        if collected.broke is not None and mark.index >= collected.broke.index:
            within = False  # Locust's numbers crossed the limit here; the run stopped on them
        steps.append(
            StepResult(
                index=mark.index,
                users=round(mark.target or 0),
                start=mark.start,
                rps=stats.rps,
                p95_ms=stats.p95_ms,
                error_rate_percent=stats.error_rate_percent,
                within_limits=within,
            )
        )
    return steps
