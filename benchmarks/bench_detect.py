"""Detection benchmark, simulated: false alarms, power and interval coverage of the verdict engine.

A generative model of load-test results (``ci_perf.simulate``, seeded): 10 endpoints;
heavy-tailed latency (lognormal body, 2 % Pareto tail); per run a run-to-run offset (shared and per
endpoint, CV ≈ 3 %); within a run an AR(1) level over windows (φ = 0.5 or 0.9) and a slow linear
drift. Each trial builds a baseline (10 runs for history mode, 1 run for single-baseline mode) and
a current run, runs the real ``compare_runs`` over all endpoints and the aggregate, and records:

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

import numpy as np

from ci_perf.simulate import (
    DETECTION_ENDPOINTS,
    DETECTION_PER_WINDOW,
    DETECTION_WINDOWS,
    NoiseModel,
    Trial,
    detection_trial,
)


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
                model = NoiseModel(phi=phi)
                for effect in effects:
                    count = args.aa if effect == 0 else args.per_effect
                    seeds = [int(effect * 1e6 + phi * 1e4) + i for i in range(count)]
                    trials = [Trial(mode=mode, effect=effect, model=model, seed=seed) for seed in seeds]
                    outcomes = list(pool.map(detection_trial, trials, chunksize=8))
                    alarms = [o.alarm for o in outcomes]
                    hits = [o.hit for o in outcomes]
                    covered = [o.covered for o in outcomes]
                    mdes = [o.mde for o in outcomes if o.mde is not None]
                    mde = f"{np.median(mdes):.1f} %" if mdes else "–"
                    power = _share(hits) if effect else "      –"
                    print(
                        f"{mode:8} {phi:3.1f} {100 * effect:5.0f} % {count:7d}  {_share(alarms):>16}   "
                        f"{power:>14}  {_share(covered):>14}  {mde:>9}",
                        flush=True,
                    )
    print(
        f"({time.perf_counter() - began:.0f} s; {DETECTION_ENDPOINTS} endpoints, "
        f"{DETECTION_WINDOWS} windows × {DETECTION_PER_WINDOW} requests)"
    )


if __name__ == "__main__":
    sys.exit(main())
