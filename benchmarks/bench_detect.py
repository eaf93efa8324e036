"""Detection benchmark, simulated: false alarms, power and interval coverage of the verdict engine.

A generative model of load-test results: 10 endpoints; heavy-tailed latency (lognormal body, 2 %
Pareto tail); per run a run-to-run offset (shared and per endpoint, CV ≈ 3 %); within a run an
AR(1) level over windows (φ = 0.5 or 0.9) and a slow linear drift. Each trial builds a baseline
(10 runs for history mode, 1 run for single-baseline mode) and a current run, runs the real
``compare_runs`` over all endpoints and the aggregate, and records:

* false alarms: A/A reports with any regression or improvement verdict (target ≤ 1 %);
* power: effect trials whose slowed endpoint gets a p95 regression verdict;
* coverage: trials whose slowed endpoint's 95 % interval contains the injected effect.

Run: ``make bench-detect`` (full: ≥ 1,000 A/A and 300 trials per effect) or
``--smoke`` (a few dozen trials; ``tests/unit/test_detect_smoke.py`` runs it).
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

import numpy as np

from ci_perf import sketches
from ci_perf.analysis.compare import compare_runs
from ci_perf.analysis.summarize import summarize_run
from ci_perf.config import Comparison, LoadSettings
from ci_perf.results import CollectedEndpointWindow, CollectedRun, RunResult
from ci_perf.sketches import Sketch

ENDPOINTS = 10
WINDOWS = 30
PER_WINDOW = 100
LOAD = LoadSettings(users=10, duration=30, warmup=0)


@dataclass(frozen=True)
class Model:
    phi: float = 0.5
    window_sd: float = 0.03  # stationary sd of the AR(1) level, log scale
    run_sd: float = 0.025  # run-to-run offset shared by all endpoints
    endpoint_sd: float = 0.015  # run-to-run offset of each endpoint on its own
    drift_sd: float = 0.01  # slope of a slow drift across one run, log scale per run


def _sketch(values: np.ndarray) -> Sketch:
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


def simulate_run(rng: np.random.Generator, model: Model, *, slow: float, start: float) -> RunResult:
    shared = rng.normal(0, model.run_sd)
    windows = []
    innovation = model.window_sd * math.sqrt(1 - model.phi**2)
    for e in range(ENDPOINTS):
        median = 5.0 * (1 + e)
        offset = shared + rng.normal(0, model.endpoint_sd) + (math.log(slow) if e == 0 else 0.0)
        slope = rng.normal(0, model.drift_sd)
        level = rng.normal(0, model.window_sd)
        for w in range(WINDOWS):
            level = model.phi * level + rng.normal(0, innovation)
            drift = slope * (w / WINDOWS - 0.5)
            body = rng.lognormal(math.log(median) + offset + level + drift, 0.4, PER_WINDOW)
            tail = rng.random(PER_WINDOW) < 0.02
            body[tail] *= 1 + rng.pareto(2.0, int(tail.sum()))
            window_start = start + w
            windows.append(
                CollectedEndpointWindow(
                    endpoint=f"GET /e{e}",
                    start=window_start,
                    requests=PER_WINDOW,
                    failures=0,
                    latency=_sketch(body),
                    first_start=window_start,
                    last_end=window_start + 1,
                )
            )
    collected = CollectedRun(locust_version="sim", window_s=1.0, windows=windows, peak_users=10)
    return summarize_run(collected, load=LOAD, target="http://sim", tool_version="sim")


@dataclass(frozen=True)
class Trial:
    mode: str
    effect: float
    model: Model
    seed: int


def run_trial(trial: Trial) -> tuple[bool, bool, bool, float | None]:
    """(false alarm elsewhere, slowed endpoint p95 regression, interval covers the effect, MDE)."""
    rng = np.random.default_rng(trial.seed)
    base_runs = 10 if trial.mode == "history" else 1
    baseline = [simulate_run(rng, trial.model, slow=1.0, start=1_000.0 + 100 * i) for i in range(base_runs)]
    current = simulate_run(rng, trial.model, slow=1 + trial.effect, start=10_000.0)
    report = compare_runs(current, baseline, settings=Comparison(seed=trial.seed, bootstrap=500))
    slowed = report.for_endpoint("GET /e0")
    assert slowed is not None
    p95 = slowed.metrics["p95"]
    # with an effect, verdicts on the slowed endpoint and on the aggregate (which contains it) are true
    if trial.effect:
        others = [m for e in report.endpoints for m in e.metrics.values() if e.endpoint.startswith("GET /e")]
        others = [m for m in others if m not in slowed.metrics.values()]
    else:
        others = [m for e in report.endpoints for m in e.metrics.values()]
    alarm = any(m.verdict in {"regression", "improvement"} for m in others)
    hit = p95.verdict == "regression"
    truth = 100 * trial.effect
    covered = p95.ci_low is not None and p95.ci_high is not None and p95.ci_low <= truth <= p95.ci_high
    return alarm, hit, covered, p95.mde


def _share(flags: list[bool]) -> str:
    n = len(flags)
    k = sum(flags)
    half = 1.96 * math.sqrt(max(k, 0.5) * (n - k + 0.5) / n) / n if n else 0.0
    return f"{100 * k / n:5.1f} % ±{100 * half:.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="a small, fast version")
    parser.add_argument("--aa", type=int, default=1000)
    parser.add_argument("--per-effect", type=int, default=300)
    parser.add_argument("--phi", type=float, nargs="+", default=[0.5, 0.9])
    parser.add_argument("--modes", nargs="+", default=["history", "single"])
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    if args.smoke:
        args.aa, args.per_effect, args.phi = 40, 20, [0.5]
    effects = [0.0, 0.05, 0.10, 0.25]
    print("mode     phi  effect  trials  false alarms/report   p95 power       95% CI coverage  median MDE")
    began = time.perf_counter()
    with ProcessPoolExecutor(max_workers=args.workers) as pool:
        for mode in args.modes:
            for phi in args.phi:
                model = Model(phi=phi)
                for effect in effects:
                    count = args.aa if effect == 0 else args.per_effect
                    trials = [Trial(mode, effect, model, seed=int(effect * 1e6 + phi * 1e4) + i) for i in range(count)]
                    outcomes = list(pool.map(run_trial, trials, chunksize=8))
                    alarms = [o[0] for o in outcomes]
                    hits = [o[1] for o in outcomes]
                    covered = [o[2] for o in outcomes]
                    mdes = [o[3] for o in outcomes if o[3] is not None]
                    mde = f"{np.median(mdes):.1f} %" if mdes else "–"
                    power = _share(hits) if effect else "      –"
                    print(
                        f"{mode:8} {phi:3.1f} {100 * effect:5.0f} % {count:7d}  {_share(alarms):>16}   "
                        f"{power:>14}  {_share(covered):>14}  {mde:>9}",
                        flush=True,
                    )
    print(f"({time.perf_counter() - began:.0f} s; {ENDPOINTS} endpoints, {WINDOWS} windows × {PER_WINDOW} requests)")


if __name__ == "__main__":
    sys.exit(main())
