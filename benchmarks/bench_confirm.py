"""Confirm before blocking, simulated: what re-running a candidate regression buys and what it costs.

Each trial draws a baseline and ``1 + confirm_runs`` runs of the change from ``ci_perf.simulate``
(history mode: the detection model, 10 endpoints, ``--history`` baseline runs; duet mode: the duet
model, both arms in each run), judges the first run with the real ``compare_runs``, re-runs when
``analysis.confirm`` finds a candidate, and decides on all the runs with ``confirm_reruns``, exactly
as ``ci-perf run`` does. It records, without and with confirmation:

* gated: a regression verdict on anything that did not change (A/A: on anything);
* power: the slowed endpoint's p95 is a regression (after confirmation: a confirmed one);
* load runs per pull request (1, or 1 + confirm_runs when a candidate was re-run): median and mean.

Run: ``make bench-confirm`` (``--trials`` per row, default 300) or ``--smoke``.
"""

from __future__ import annotations

import argparse
import math
import statistics
import time
from concurrent.futures import ProcessPoolExecutor
from typing import NamedTuple

import numpy as np

from ci_perf.analysis.compare import ComparisonReport, compare_runs
from ci_perf.analysis.confirm import confirm_reruns, wants_reruns
from ci_perf.config import Comparison
from ci_perf.results import AGGREGATE, RunResult
from ci_perf.simulate import DETECTION_SLOWED, DUET_SLOWED, NoiseModel, detection_run, duet_run


class Case(NamedTuple):
    mode: str  # "history" or "duet"
    effect: float
    seed: int
    history: int
    confirm_runs: int


class Scored(NamedTuple):
    gated_single: bool
    hit_single: bool
    gated: bool
    hit: bool
    runs: int


def _runs(case: Case) -> tuple[list[RunResult], list[RunResult], str]:
    """The baseline (none in duet) and the change's runs, first and re-runs."""
    count = 1 + case.confirm_runs
    if case.mode == "duet":
        runs = [duet_run(effect=case.effect, hog=False, seed=case.seed * 10 + i) for i in range(count)]
        return [], runs, DUET_SLOWED
    rng = np.random.default_rng(case.seed)
    model = NoiseModel()
    baseline = [detection_run(rng, model, slow=1.0, start=1_000.0 + 100 * i) for i in range(case.history)]
    runs = [detection_run(rng, model, slow=1 + case.effect, start=10_000.0 + 100 * i) for i in range(count)]
    return baseline, runs, DETECTION_SLOWED


def _score(report: ComparisonReport, slowed: str, effect: float) -> tuple[bool, bool]:
    changed = {slowed, AGGREGATE} if effect else set()
    gated = any(
        m.verdict == "regression" for e in report.endpoints if e.endpoint not in changed for m in e.metrics.values()
    )
    target = report.for_endpoint(slowed)
    return gated, target is not None and target.metrics["p95"].verdict == "regression"


def trial(case: Case) -> Scored:
    baseline, runs, slowed = _runs(case)
    settings = Comparison(seed=case.seed, bootstrap=300, confirm_runs=case.confirm_runs)
    first = compare_runs(runs[0], baseline, settings=settings)
    gated_single, hit_single = _score(first, slowed, case.effect)
    if not wants_reruns(first, runs[0], baseline, settings):
        return Scored(gated_single, hit_single, gated_single, hit_single, 1)
    final, _ = confirm_reruns(first, runs[0], runs[1:], baseline=baseline, settings=settings)
    gated, hit = _score(final, slowed, case.effect)
    return Scored(gated_single, hit_single, gated, hit, len(runs))


def _share(flags: list[bool]) -> str:
    n, k = len(flags), sum(flags)
    half = 1.96 * math.sqrt(max(k, 0.5) * (n - k + 0.5) / n) / n if n else 0.0
    return f"{100 * k / n:5.1f} % ±{100 * half:.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="a small, fast version")
    parser.add_argument("--trials", type=int, default=300)
    parser.add_argument("--history", type=int, default=20)
    parser.add_argument("--confirm-runs", type=int, default=2)
    parser.add_argument("--modes", nargs="+", default=["history", "duet"])
    parser.add_argument("--effects", type=float, nargs="+", default=[0.0, 0.10, 0.25])
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    if args.smoke:
        args.trials, args.effects = 12, [0.0, 0.25]
    print(
        "mode     effect  trials  gated (1 run)   gated (confirmed)  p95 power (1 run)  power (confirmed)  "
        "re-run  load runs/PR (median, mean)"
    )
    began = time.perf_counter()
    with ProcessPoolExecutor(max_workers=args.workers) as pool:
        for mode in args.modes:
            for effect in args.effects:
                cases = [
                    Case(mode, effect, int(effect * 1e6) + i, args.history, args.confirm_runs)
                    for i in range(args.trials)
                ]
                scored = list(pool.map(trial, cases, chunksize=4))
                runs = [s.runs for s in scored]
                print(
                    f"{mode:8} {100 * effect:4.0f} % {len(scored):7d}  {_share([s.gated_single for s in scored]):>13}"
                    f"   {_share([s.gated for s in scored]):>15}  {_share([s.hit_single for s in scored]):>17}  "
                    f"{_share([s.hit for s in scored]):>17}  {_share([r > 1 for r in runs]):>13}  "
                    f"{statistics.median(runs):g}, {statistics.mean(runs):.2f}",
                    flush=True,
                )
    print(f"({time.perf_counter() - began:.0f} s; history {args.history} runs; confirm_runs {args.confirm_runs})")


if __name__ == "__main__":
    main()
