"""Simulated load-test results: the seeded noise models the benchmarks and the tests draw runs from.

Pure: no I/O and no clock; the same seed gives the same run, so a test of the verdicts is a test of
behaviour, never of luck. Two models:

* detection (``make bench-detect``): 10 endpoints, heavy-tailed latency (lognormal body, 2 %
  Pareto tail), a run-to-run offset (shared and per endpoint) and within a run an AR(1) level over
  windows plus a slow linear drift; the scenarios of issue 13, item 10 (``SCENARIOS``) add AR(1)
  φ 0.9, bursty errors on a low-traffic endpoint, heavy tails with outliers, and main drifting or
  stepping across the history. :func:`detection_trial` judges a current run against a baseline of
  ``Trial.history`` runs (history mode) or 1 (single-baseline mode).
* duet (``make bench-duet``): both arms in one run share a run-level offset and AR(1) window noise,
  which duet pairing cancels and history mode has to carry; a CPU hog makes both larger.

:func:`verdict_of` scores a comparison against the injected effect: a false alarm anywhere that
did not change, a p95 regression on the slowed endpoint, and whether its interval covers the truth.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from ci_perf import sketches
from ci_perf.analysis import stats
from ci_perf.analysis.compare import ComparisonReport, compare_runs
from ci_perf.analysis.confirm import confirm_reruns, wants_reruns
from ci_perf.analysis.summarize import summarize_run
from ci_perf.config import Comparison, LoadSettings
from ci_perf.models import Frozen
from ci_perf.results import AGGREGATE, CollectedEndpointWindow, CollectedRun, CpuSample, RunResult
from ci_perf.sketches import Sketch

__all__ = [
    "DETECTION_ENDPOINTS",
    "DETECTION_PER_WINDOW",
    "DETECTION_SLOWED",
    "DETECTION_WINDOWS",
    "DUET_ENDPOINTS",
    "DUET_SLOWED",
    "LOW_TRAFFIC",
    "SCENARIOS",
    "NoiseModel",
    "Outcome",
    "Trial",
    "base_only",
    "detection_baseline",
    "detection_run",
    "detection_trial",
    "duet_run",
    "head_only",
    "history_for",
    "score",
    "verdict_of",
]


class Outcome(NamedTuple):
    """How one comparison did against the effect that was injected."""

    alarm: bool  # a regression or improvement verdict on something that did not change
    hit: bool  # a p95 regression on the slowed endpoint
    covered: bool  # the slowed endpoint's p95 interval contains the true effect
    mde: float | None  # the slowed endpoint's p95 minimum detectable effect, in %
    log_ratio: float | None  # the slowed endpoint's p95, current over baseline, log scale
    gated: bool = False  # a regression verdict (what fails the gate) on something that did not change
    disagree: bool = False  # the slowed endpoint's p95: p < 2.5 % one-sided but its 95 % interval holds 0, or not
    runs: int = 1  # load runs the pull request took (1 + the confirm runs, when a candidate asked for them)


def verdict_of(
    current: RunResult, baseline: list[RunResult], *, slowed: str, effect: float, settings: Comparison
) -> Outcome:
    """Compare ``current`` with ``baseline`` (duet when it carries its base arm and ``baseline`` is
    empty) and score the verdicts against ``effect``, the true relative change of ``slowed``."""
    return score(compare_runs(current, baseline, settings=settings), slowed=slowed, effect=effect)


def score(report: ComparisonReport, *, slowed: str, effect: float) -> Outcome:
    """Score a comparison's verdicts against ``effect``, the true relative change of ``slowed``."""
    target = report.for_endpoint(slowed)
    if target is None:
        msg = f"the simulated run has no endpoint {slowed!r}"
        raise ValueError(msg)
    p95 = target.metrics["p95"]
    changed = {slowed, AGGREGATE} if effect else set()  # the aggregate holds the slowed endpoint
    others = [m for e in report.endpoints if e.endpoint not in changed for m in e.metrics.values()]
    truth = 100 * effect
    disagree = False
    if p95.p_value is not None and p95.ci_low is not None and p95.ci_high is not None:
        disagree = (p95.p_value < (1 - stats.CONFIDENCE) / 2) != (p95.ci_low > 0 or p95.ci_high < 0)
    return Outcome(
        gated=any(m.verdict == "regression" for m in others),
        disagree=disagree,
        alarm=any(m.verdict in {"regression", "improvement"} for m in others),
        hit=p95.verdict == "regression",
        covered=p95.ci_low is not None and p95.ci_high is not None and p95.ci_low <= truth <= p95.ci_high,
        mde=p95.mde,
        log_ratio=math.log(p95.current / p95.baseline) if p95.current and p95.baseline else None,
    )


# -- detection ------------------------------------------------------------------------------------

DETECTION_ENDPOINTS = 10
DETECTION_WINDOWS = 30
DETECTION_PER_WINDOW = 100
DETECTION_LOAD = LoadSettings(users=10, duration=30, warmup=0)
# median 25 ms, p95 ≈ 50 ms: +10 % is 5 ms, far above ``min_abs_ms``, so the statistics are measured
DETECTION_SLOWED = "GET /e4"
LOW_TRAFFIC = "GET /e9"  # the endpoint with bursty errors (``NoiseModel.bursty_errors``)
LOW_TRAFFIC_PER_WINDOW = 10


class NoiseModel(Frozen):
    """Run-to-run and within-run noise of the detection model, all on the log scale."""

    phi: float = 0.5  # lag-1 autocorrelation of the window level
    window_sd: float = 0.03  # stationary sd of the AR(1) level
    run_sd: float = 0.025  # run-to-run offset shared by all endpoints
    endpoint_sd: float = 0.015  # run-to-run offset of each endpoint on its own
    drift_sd: float = 0.01  # slope of a slow drift across one run, per run
    sigma: float = 0.4  # sd of the lognormal body of request latency
    tail_share: float = 0.02  # requests in a Pareto(α = 2) tail
    outlier_share: float = 0.0  # requests ``outlier_factor`` × slower (a stall, a GC pause)
    outlier_factor: float = 50.0
    bursty_errors: bool = False  # LOW_TRAFFIC gets 10 requests per window and failures in bursts
    main_drift: float = 0.0  # main slows by this much (log) per baseline run, every endpoint
    main_step: float = 0.0  # main's slowed endpoint steps by this much (log) halfway through the history


# every scenario of issue 13, item 10 (φ 0.5 unless named; the shared run effect is in all of them)
SCENARIOS: dict[str, NoiseModel] = {
    "shared run effect": NoiseModel(),
    "AR(1) φ 0.9": NoiseModel(phi=0.9),
    "bursty errors": NoiseModel(bursty_errors=True),
    "heavy tails": NoiseModel(sigma=1.0, tail_share=0.0, outlier_share=0.001),
    "drift on main": NoiseModel(main_drift=math.log(1.005)),
    "step on main": NoiseModel(main_step=math.log(1.10)),
}


class Trial(Frozen):
    """One detection trial: ``effect`` slows ``DETECTION_SLOWED`` in the current run (0.25 = +25 %)."""

    mode: str  # "history" (``history`` baseline runs) or "single" (1)
    effect: float
    model: NoiseModel
    seed: int
    history: int = 10
    confirm: bool = False  # re-run a candidate regression ``Comparison.confirm_runs`` times (analysis.confirm)


def _sketch(values: npt.NDArray[np.float64]) -> Sketch:
    """``sketches.of_values`` vectorised: the detection runs hold 30,000 requests each."""
    keys = np.ceil(np.log2(values) * sketches.KEY_MULTIPLIER).astype(np.int64)
    low = int(keys.min())
    return Sketch(
        offset=low,
        bins=np.bincount(keys - low).tolist(),
        count=len(values),
        sum=float(values.sum()),
        min=float(values.min()),
        max=float(values.max()),
    )


def _latencies(
    rng: np.random.Generator, model: NoiseModel, log_medians: npt.NDArray[np.float64], size: int
) -> npt.NDArray[np.float64]:
    """``size`` requests for each window (a row per entry of ``log_medians``)."""
    body = rng.lognormal(log_medians[:, None], model.sigma, (len(log_medians), size))
    tail = rng.random(body.shape) < model.tail_share
    body[tail] *= 1 + rng.pareto(2.0, int(tail.sum()))
    body[rng.random(body.shape) < model.outlier_share] *= model.outlier_factor
    return body


def _failures(rng: np.random.Generator, requests: int) -> int:
    """A low failure rate (0.5 %) with bursts: 3 % of windows fail 20 % of their requests."""
    rate = 0.2 if rng.random() < 0.03 else 0.005
    return int(rng.binomial(requests, rate))


def _window(
    name: str, start: float, values: npt.NDArray[np.float64], failures: int, span: float
) -> CollectedEndpointWindow:
    """A collected window, built without validation: the simulation's sketches are sane by construction."""
    return CollectedEndpointWindow.model_construct(
        arm="head",
        endpoint=name,
        host=None,
        in_flight_ms=[],
        start=start,
        requests=len(values),
        failures=failures,
        latency=_sketch(values),
        first_start=start,
        last_end=start + span,
    )


def detection_run(
    rng: np.random.Generator,
    model: NoiseModel,
    *,
    slow: float,
    start: float,
    shift: float = 0.0,
    merged: bool = False,
) -> RunResult:
    """One run of the detection model: ``slow`` multiplies DETECTION_SLOWED's latency, ``shift`` (log)
    every endpoint's. ``merged``: one window per endpoint (the run-level totals are the same; history
    mode reads nothing else of a baseline run, and it is 30× cheaper)."""
    shared = rng.normal(0, model.run_sd) + shift
    windows: list[CollectedEndpointWindow] = []
    innovation = model.window_sd * math.sqrt(1 - model.phi**2)
    for e in range(DETECTION_ENDPOINTS):
        name = f"GET /e{e}"
        low_traffic = model.bursty_errors and name == LOW_TRAFFIC
        per_window = LOW_TRAFFIC_PER_WINDOW if low_traffic else DETECTION_PER_WINDOW
        offset = shared + rng.normal(0, model.endpoint_sd) + (math.log(slow) if name == DETECTION_SLOWED else 0.0)
        slope = rng.normal(0, model.drift_sd)
        levels = np.empty(DETECTION_WINDOWS)
        level = rng.normal(0, model.window_sd)
        for w, shock in enumerate(rng.normal(0, innovation, DETECTION_WINDOWS)):
            level = model.phi * level + shock
            levels[w] = level + slope * (w / DETECTION_WINDOWS - 0.5)
        parts = _latencies(rng, model, math.log(5.0 * (1 + e)) + offset + levels, per_window)
        failures = [_failures(rng, per_window) if low_traffic else 0 for _ in range(DETECTION_WINDOWS)]
        if merged:
            windows.append(_window(name, start, parts.ravel(), sum(failures), DETECTION_WINDOWS))
        else:
            windows += [_window(name, start + w, v, f, 1) for w, (v, f) in enumerate(zip(parts, failures, strict=True))]
    collected = CollectedRun(locust_version="sim", window_s=1.0, windows=windows, peak_users=10)
    return summarize_run(collected, load=DETECTION_LOAD, target="http://sim", tool_version="sim")


def detection_baseline(rng: np.random.Generator, trial: Trial) -> list[RunResult]:
    """The baseline runs of a trial, oldest first; main's drift and step (``NoiseModel``) end at the
    current run's level, so the pull request's own change is ``trial.effect``."""
    model = trial.model
    count = trial.history if trial.mode == "history" else 1
    runs = []
    for i in range(count):
        step = 1.0 if i >= count // 2 else math.exp(-model.main_step)
        runs.append(
            detection_run(
                rng,
                model,
                slow=step,
                start=1_000.0 + 100 * i,
                shift=model.main_drift * (i - count),
                merged=trial.mode == "history",
            )
        )
    return runs


def detection_trial(trial: Trial, settings: Comparison | None = None) -> Outcome:
    """A baseline and a current run drawn from ``trial.seed``, compared and scored."""
    rng = np.random.default_rng(trial.seed)
    baseline = detection_baseline(rng, trial)
    current = detection_run(rng, trial.model, slow=1 + trial.effect, start=10_000.0)
    settings = settings or Comparison(seed=trial.seed, bootstrap=500)
    report = compare_runs(current, baseline, settings=settings)
    reruns: list[RunResult] = []
    if trial.confirm and wants_reruns(report, current, baseline, settings):
        slow = 1 + trial.effect
        reruns = [
            detection_run(rng, trial.model, slow=slow, start=20_000.0 + 100 * i) for i in range(settings.confirm_runs)
        ]
        report, _ = confirm_reruns(report, current, reruns, baseline=baseline, settings=settings)
    return score(report, slowed=DETECTION_SLOWED, effect=trial.effect)._replace(runs=1 + len(reruns))


# -- duet -----------------------------------------------------------------------------------------

DUET_SLOWED = "POST /api/orders"
DUET_ENDPOINTS = {"GET /api/products": 12.0, "GET /api/products/42": 6.0, DUET_SLOWED: 25.0}  # median ms


def duet_run(*, effect: float, hog: bool, seed: int, windows: int = 15, per_window: int = 40) -> RunResult:
    """One duet run: ``effect`` slows the head arm of ``DUET_SLOWED``; ``hog`` makes the noise larger
    (run offset sd 10 % instead of 3 %, window noise sd 15 % instead of 5 %)."""
    rng = np.random.default_rng(seed)
    run_offset = float(rng.normal(0, 0.10 if hog else 0.03))
    sd = 0.15 if hog else 0.05
    shared = np.zeros(windows)
    for t in range(windows):  # AR(1) window noise, φ 0.5, stationary sd ``sd``
        shared[t] = 0.5 * (shared[t - 1] if t else 0.0) + rng.normal(0, sd * math.sqrt(1 - 0.25))
    parts = []
    for name, median in DUET_ENDPOINTS.items():
        for t in range(windows):
            start = 1_000.0 + t
            for arm in ("head", "base"):
                factor = 1 + effect if (arm == "head" and name == DUET_SLOWED) else 1.0
                values = median * factor * np.exp(run_offset + shared[t] + rng.normal(0, 0.25, per_window))
                parts.append(
                    CollectedEndpointWindow(
                        arm=arm,
                        endpoint=name,
                        start=start,
                        requests=per_window,
                        failures=0,
                        latency=sketches.of_values(values.tolist()),
                        first_start=start,
                        last_end=start + 1,
                    )
                )
    collected = CollectedRun(
        locust_version="sim",
        window_s=1.0,
        windows=parts,
        cpu=[CpuSample(process="locust", at=1_000.0 + t, percent=30.0) for t in range(windows)],
    )
    return summarize_run(
        collected,
        load=LoadSettings(users=10, duration=windows, warmup=0),
        target="http://head",
        tool_version="sim",
        baseline_target="http://base",
    )


def head_only(run: RunResult) -> RunResult:
    """A duet run's head arm as a plain run."""
    return run.model_copy(update={"base": None})


def base_only(run: RunResult) -> RunResult:
    """A duet run's base arm as a plain run."""
    if run.base is None:
        msg = "not a duet run: it has no base arm"
        raise ValueError(msg)
    return run.model_copy(update={"base": None, "endpoints": run.base.endpoints, "aggregate": run.base.aggregate})


def history_for(runs: list[RunResult], index: int, size: int = 10) -> list[RunResult]:
    """The base arms of the ``size`` runs nearest in time to run ``index`` (never itself), oldest first."""
    others = sorted((abs(j - index), j) for j in range(len(runs)) if j != index)
    return [base_only(runs[j]) for _, j in sorted(others[:size], key=lambda pair: pair[1])]
