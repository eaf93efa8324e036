"""Detection benchmark, simulated: false alarms, power, interval coverage and MDE of the verdict engine.

A generative model of load-test results (``ci_perf.simulate``, seeded): 10 endpoints; lognormal
latency with a Pareto tail; per run a run-to-run offset shared by all endpoints plus one per endpoint
(together CV ≈ 2.9 %); within a run an AR(1) level over windows and a slow drift. The scenarios of
issue 13, item 10 (``simulate.SCENARIOS``) vary it: AR(1) φ 0.9, bursty errors on a low-traffic
endpoint, heavy tails with outliers, main drifting (+0.5 % per run) or stepping (+10 % halfway) across
the history. Each trial builds the baseline (``--history`` runs, or 1 run in single mode) and a
current run whose ``GET /e4`` (p95 ≈ 50 ms) is slowed by 0, +5, +10 or +25 %, runs the real
``compare_runs`` over all endpoints and the aggregate, and records:

* gating / any verdict: A/A reports with a regression verdict (fails the gate) / with a regression or
  improvement verdict (targets ≤ 0.5 % and ≤ 1 %);
* power: trials whose slowed endpoint gets a p95 regression verdict, per effect;
* coverage: the share of trials whose p95 95 % interval holds the truth, over all trials and the
  lowest over the effects (each a smaller sample: its minimum is biased low);
* MDE: the median MDE shown for the slowed endpoint's p95 (A/A trials) and the effect at which the
  simulated power reaches 80 % (probit interpolation between the simulated effects);
* p/CI: trials whose one-sided p < 2.5 % disagrees with the 95 % interval excluding 0;
* re-run: with ``+confirm`` in the mode (``history:20+confirm``), a candidate regression is re-run
  ``comparison.confirm_runs`` times (default 2) and decided on the combined evidence
  (``analysis.confirm``); the share of A/A and +10 % trials that re-ran.

Run: ``make bench-detect`` (the full table) or ``--smoke`` (a few trials; the unit test
``tests/unit/test_detect_smoke.py`` checks the direction of the results on its own seeds).
"""

from __future__ import annotations

import argparse
import itertools
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from statistics import NormalDist

import numpy as np

from ci_perf.simulate import SCENARIOS, Outcome, Trial, detection_trial

EFFECTS = (0.0, 0.05, 0.10, 0.25)
SEED_MODES = {"history:20": 0, "history:10": 1, "single": 2}


def _share(flags: list[bool]) -> str:
    n = len(flags)
    k = sum(flags)
    return f"{100 * k / n:.1f} %" if n else "–"


def _power_point(powers: dict[float, float], target: float = 0.8) -> str:
    """The effect at which power reaches ``target``: probit-linear between the simulated effects."""
    probit = NormalDist().inv_cdf
    points = sorted((e, min(max(p, 0.005), 0.995)) for e, p in powers.items() if e > 0)
    if points[0][1] >= target:
        return f"≤ {100 * points[0][0]:.0f} %"
    for (e0, p0), (e1, p1) in itertools.pairwise(points):
        if p0 < target <= p1:
            share = (probit(target) - probit(p0)) / (probit(p1) - probit(p0))
            return f"{100 * (e0 + share * (e1 - e0)):.1f} %"
    return f"> {100 * points[-1][0]:.0f} %"


def _row(name: str, mode: str, outcomes: dict[float, list[Outcome]]) -> str:
    aa = outcomes[0.0]
    powers = {e: sum(o.hit for o in outcomes[e]) / len(outcomes[e]) for e in EFFECTS[1:]}
    coverage = min(sum(o.covered for o in v) / len(v) for v in outcomes.values())
    everywhere = [o.covered for v in outcomes.values() for o in v]
    mdes = [o.mde for o in aa if o.mde is not None]
    disagree = [o.disagree for v in outcomes.values() for o in v]
    cells = [
        name,
        mode,
        str(len(aa)),
        _share([o.gated for o in aa]),
        _share([o.alarm for o in aa]),
        *(f"{100 * powers[e]:.0f} %" for e in EFFECTS[1:]),
        f"{_share(everywhere)} / {100 * coverage:.1f} %",
        f"{np.median(mdes):.1f} %" if mdes else "–",
        _power_point(powers),
        _share(disagree),
        f"{_share([o.runs > 1 for o in aa])}, {_share([o.runs > 1 for o in outcomes[0.10]])}",
    ]
    return "| " + " | ".join(cells) + " |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="a small, fast version")
    parser.add_argument("--aa", type=int, default=400, help="A/A trials per scenario and mode")
    parser.add_argument("--per-effect", type=int, default=150, help="trials per effect")
    parser.add_argument("--scenarios", nargs="+", default=list(SCENARIOS), choices=list(SCENARIOS))
    parser.add_argument("--modes", nargs="+", default=["history:20", "history:10", "single"])
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    if args.smoke:
        args.aa, args.per_effect, args.modes = 20, 10, ["history:20"]
    print(
        "| scenario | mode | A/A trials | A/A gating | A/A any verdict | power +5 % | +10 % | +25 % "
        "| coverage (all / min) | MDE shown | 80 %-power effect | p/CI disagree | re-run A/A, +10 % |"
    )
    print("|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|")
    began = time.perf_counter()
    with ProcessPoolExecutor(max_workers=args.workers) as pool:
        for name in args.scenarios:
            for mode in args.modes:
                base = mode.removesuffix("+confirm")
                kind, _, size = base.partition(":")
                # seeds fixed by scenario and mode (not by their order on the command line); a mode with
                # +confirm draws the same first runs as the mode without it
                s, m = list(SCENARIOS).index(name), SEED_MODES.get(base, 3)
                trials = {
                    effect: [
                        Trial(
                            mode=kind,
                            effect=effect,
                            model=SCENARIOS[name],
                            history=int(size or 10),
                            confirm=mode.endswith("+confirm"),
                            seed=1_000_000 * s + 100_000 * m + 10_000 * k + i,
                        )
                        for i in range(args.aa if effect == 0 else args.per_effect)
                    ]
                    for k, effect in enumerate(EFFECTS)
                }
                outcomes = {e: list(pool.map(detection_trial, t, chunksize=4)) for e, t in trials.items()}
                print(_row(name, mode, outcomes), flush=True)
    print(f"\n({time.perf_counter() - began:.0f} s on {args.workers} processes)")


if __name__ == "__main__":
    sys.exit(main())
