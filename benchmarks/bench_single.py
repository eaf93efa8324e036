"""Single and duet modes, simulated: one pivot and learned run noise (issue 13, items 2 and 7).

Single mode: the detection model of ``ci_perf.simulate`` (10 endpoints, lognormal latency with a
Pareto tail, a run-to-run offset shared by all endpoints plus one per endpoint, an AR(1) level over
30 windows of 100 requests) with φ 0.5 or 0.9 and a true run-to-run noise of 2.9 % (the model's
default) or 4.9 % ("5 %": shared 4.2 %, per endpoint 2.5 %). One baseline run, one current run whose
``GET /e4`` is slowed by 0 or +25 %. The run noise is either assumed (``comparison.run_noise_percent``,
3 %) or learned (``analysis.noise``) from a store of 3 other scenarios' histories of 5 runs each,
drawn from the same model (``STORES`` stores per model, trial i uses store i mod ``STORES``).

Duet: ``simulate.duet_run`` (3 endpoints, 15 windows of 40 requests per arm), A/A and +10 % on
``POST /api/orders``, one run and with 2 confirm runs (``analysis.confirm``), as ``bench_confirm``.

Reported: for A/A, over every latency test of the unchanged endpoints (p50, p95, p99, winsorised
mean; the aggregate excluded when an endpoint was slowed): one-sided p_up < 0.01, 95 % coverage of 0,
p/CI disagreements (one-sided p < 2.5 % ⇔ the interval excludes 0); per report: any verdict and a
regression verdict. With an effect: the slowed endpoint's p95 power, coverage and disagreements.
Run: ``.venv/bin/python benchmarks/bench_single.py`` (``--smoke`` for a quick look).
"""

from __future__ import annotations

import argparse
import functools
import inspect
import time
from concurrent.futures import ProcessPoolExecutor
from typing import NamedTuple

import numpy as np

from ci_perf.analysis import compare
from ci_perf.analysis.confirm import confirm_reruns, wants_reruns
from ci_perf.config import Comparison
from ci_perf.results import AGGREGATE, RunResult
from ci_perf.simulate import DETECTION_SLOWED, DUET_SLOWED, NoiseModel, detection_run, duet_run

LATENCY = ("p50", "p95", "p99", "mean")
STORES = 20
NOISE = {"3 %": NoiseModel(), "5 %": NoiseModel(run_sd=0.042, endpoint_sd=0.025)}
LEARNS = "run_noise" in inspect.signature(compare.compare_runs).parameters


class Cell(NamedTuple):
    mode: str  # "single" or "duet"
    phi: float
    noise: str  # a key of NOISE
    learned: bool
    effect: float
    seed: int


class Counts(NamedTuple):
    tests: int = 0
    p_up: int = 0  # unchanged tests with one-sided p_up < 0.01
    covered: int = 0  # unchanged tests whose interval holds 0
    disagree: int = 0  # unchanged tests whose p and interval disagree
    alarm: bool = False  # a regression or improvement verdict on something unchanged
    gated: bool = False  # a regression verdict on something unchanged
    hit: bool = False  # the slowed endpoint's p95 is a regression
    hit_covered: bool = False
    hit_disagree: bool = False
    hit_confirmed: bool = False  # duet: a regression after the confirm runs


def _disagrees(m: compare.MetricComparison) -> bool:
    if m.p_value is None or m.ci_low is None or m.ci_high is None:
        return False
    return (m.p_value < 0.025) != (m.ci_low > 0 or m.ci_high < 0)


def _counts(report: compare.ComparisonReport, slowed: str, effect: float) -> Counts:
    changed = {slowed, AGGREGATE} if effect else set()
    tests = [
        m
        for e in report.endpoints
        if e.endpoint not in changed
        for k, m in e.metrics.items()
        if k in LATENCY and m.p_value is not None
    ]
    everything = [m for e in report.endpoints if e.endpoint not in changed for m in e.metrics.values()]
    target = report.for_endpoint(slowed)
    p95 = target.metrics["p95"] if target else None
    truth = 100 * effect
    return Counts(
        tests=len(tests),
        p_up=sum((m.effect or 0) > 0 and (m.p_value or 1) < 0.01 for m in tests),
        covered=sum((m.ci_low or 0) <= 0 <= (m.ci_high or 0) for m in tests),
        disagree=sum(_disagrees(m) for m in tests),
        alarm=any(m.verdict in {"regression", "improvement"} for m in everything),
        gated=any(m.verdict == "regression" for m in everything),
        hit=p95 is not None and p95.verdict == "regression",
        hit_covered=p95 is not None and (p95.ci_low or 0) <= truth <= (p95.ci_high or 0),
        hit_disagree=p95 is not None and _disagrees(p95),
    )


@functools.cache
def _store(noise: str, phi: float, index: int) -> list[list[RunResult]]:
    """Three other scenarios' histories of 5 runs each, drawn from the same model."""
    rng = np.random.default_rng(10_000 + index)
    model = NOISE[noise].model_copy(update={"phi": phi})
    return [[detection_run(rng, model, slow=1.0, start=100.0 * i) for i in range(5)] for _ in range(3)]


@functools.cache
def _learned(noise: str, phi: float, index: int) -> dict[str, object]:
    from ci_perf.analysis.noise import learn_run_noise  # absent before issue 13, item 7

    return dict(learn_run_noise(_store(noise, phi, index)))


def single(cell: Cell) -> Counts:
    rng = np.random.default_rng(cell.seed)
    model = NOISE[cell.noise].model_copy(update={"phi": cell.phi})
    baseline = [detection_run(rng, model, slow=1.0, start=1_000.0)]
    current = detection_run(rng, model, slow=1 + cell.effect, start=10_000.0)
    settings = Comparison(seed=cell.seed, bootstrap=300)
    extra = {"run_noise": _learned(cell.noise, cell.phi, cell.seed % STORES)} if cell.learned else {}
    report = compare.compare_runs(current, baseline, settings=settings, **extra)  # type: ignore[arg-type]
    return _counts(report, DETECTION_SLOWED, cell.effect)


def duet(cell: Cell) -> Counts:
    runs = [duet_run(effect=cell.effect, hog=False, seed=cell.seed * 10 + i) for i in range(3)]
    settings = Comparison(seed=cell.seed, bootstrap=300, confirm_runs=2)
    first = compare.compare_runs(runs[0], [], settings=settings)
    counts = _counts(first, DUET_SLOWED, cell.effect)
    final = first
    if wants_reruns(first, runs[0], [], settings):
        final, _ = confirm_reruns(first, runs[0], runs[1:], baseline=[], settings=settings)
    target = final.for_endpoint(DUET_SLOWED)
    return counts._replace(hit_confirmed=target is not None and target.metrics["p95"].verdict == "regression")


def trial(cell: Cell) -> Counts:
    return single(cell) if cell.mode == "single" else duet(cell)


def _pct(k: int, n: int) -> str:
    return f"{100 * k / n:.2f} %" if n else "–"


def _row(cell: Cell, results: list[Counts]) -> str:
    tests = sum(r.tests for r in results)
    n = len(results)
    source = "learned" if cell.learned else "assumed"
    label = f"{cell.mode:6} φ {cell.phi:.1f} noise {cell.noise} {source:7}" if cell.mode == "single" else "duet"
    if not cell.effect:
        return (
            f"{label:36} A/A   {n:5d}  p_up<0.01 {_pct(sum(r.p_up for r in results), tests):>8}  "
            f"cover {_pct(sum(r.covered for r in results), tests):>8}  p/CI {sum(r.disagree for r in results):3d}"
            f"/{tests}  any verdict {_pct(sum(r.alarm for r in results), n):>7}  "
            f"gated {_pct(sum(r.gated for r in results), n):>7}"
        )
    confirmed = f"  confirmed {_pct(sum(r.hit_confirmed for r in results), n):>8}" if cell.mode == "duet" else ""
    return (
        f"{label:36} +{100 * cell.effect:.0f} % {n:5d}  power {_pct(sum(r.hit for r in results), n):>8}{confirmed}"
        f"  cover {_pct(sum(r.hit_covered for r in results), n):>8}  p/CI {sum(r.hit_disagree for r in results)}/{n}"
        f"  gated elsewhere {_pct(sum(r.gated for r in results), n):>7}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="a small, fast version")
    parser.add_argument("--trials", type=int, default=400, help="trials per cell")
    parser.add_argument("--modes", nargs="+", default=["single", "duet"])
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    if args.smoke:
        args.trials = 10
    cells: list[Cell] = []
    if "single" in args.modes:
        for phi in (0.5, 0.9):
            for noise in NOISE:
                for learned in (False, True) if LEARNS else (False,):
                    cells += [Cell("single", phi, noise, learned, effect, 0) for effect in (0.0, 0.25)]
    if "duet" in args.modes:
        cells += [Cell("duet", 0.5, "3 %", learned=False, effect=effect, seed=0) for effect in (0.0, 0.10)]
    began = time.perf_counter()
    with ProcessPoolExecutor(max_workers=args.workers) as pool:
        for cell in cells:
            base = int(cell.effect * 1e6) + int(cell.phi * 1e3) * 1_000 + (7_000 if cell.noise == "5 %" else 0)
            trials = [cell._replace(seed=base + i) for i in range(args.trials)]
            print(_row(cell, list(pool.map(trial, trials, chunksize=4))), flush=True)
    print(f"({time.perf_counter() - began:.0f} s)")


if __name__ == "__main__":
    main()
