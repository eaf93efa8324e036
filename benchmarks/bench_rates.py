"""Error-rate benchmark, simulated: A/A blocking and power of the error-rate test (issue 13, item 4).

Counts only, seeded. A run has 30 windows. ``GET /quiet`` (the low-traffic endpoint of
``ci_perf.simulate``'s "bursty errors" scenario) gets 10 requests per window, failing at 0.5 %, except
in 3 % of windows (a burst) at 20 %; ``GET /busy`` gets 100 requests per window at a steady 0.5 %.
Each trial builds the baseline as the mode reads it — history: ``n`` runs' totals; single: one run's
windows; duet: the base arm's windows of the same run (bursts independent in each arm) — and a
current run, calls ``analysis.rates.rate_test`` and applies the verdict rule: Benjamini-Hochberg over
a report of ``FAMILY`` increase tests (the others A/A: uniform p-values), adjusted p < q = 0.01, the
interval's lower bound above ``rates.smallest_change`` (0.1 points, or 5 failures of the run's requests).

* A/A blocking: trials whose ``GET /quiet`` error rate gets a regression verdict (the gate fails);
* power: the same with the current run's failure rate raised (``EFFECTS``: points added to the
  base rate of every window, bursts unchanged);
* coverage: trials whose 95 % interval holds the true difference of the rates (bursts included);
* zero-width: intervals of width 0 (there must be none).

Run: ``make bench-rates`` (1,500 trials per cell, the table in docs/benchmarks.md; 2–3 minutes) or ``--trials N``.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Sequence
from typing import NamedTuple

import numpy as np

from ci_perf.analysis import rates, stats

WINDOWS = 30
BASE_RATE = 0.005
BURST_SHARE = 0.03
BURST_RATE = 0.2
FAMILY = 55  # increase tests in a report: 10 endpoints and the aggregate × 5 metrics
Q = 0.01
MIN_POINTS = 0.1
# requests per window, share of burst windows, failure rate in a burst
ENDPOINTS = {
    "GET /quiet": (10, BURST_SHARE, BURST_RATE),
    "GET /outage": (10, 0.02, 1.0),
    "GET /busy": (100, 0.0, 0.0),
}
EFFECTS = {
    "GET /quiet": (0.0, 0.02, 0.05),
    "GET /outage": (0.0, 0.02, 0.05),
    "GET /busy": (0.0, 0.005, 0.01),
}  # points / 100 added to the base rate
MODES = ("history:20", "history:10", "single", "duet")

Test = Callable[[Sequence[rates.Counts], Sequence[rates.Counts], rates.Counts], stats.Estimate | None]


class Outcome(NamedTuple):
    blocked: bool
    covered: bool
    zero_width: bool


def windows(rng: np.random.Generator, endpoint: str, extra: float) -> list[rates.Counts]:
    """One run's windows: failures at BASE_RATE + ``extra``, a burst window at BURST_RATE + ``extra``."""
    per_window, bursts, burst_rate = ENDPOINTS[endpoint]
    burst = rng.random(WINDOWS) < bursts
    failures = rng.binomial(per_window, np.minimum(np.where(burst, burst_rate, BASE_RATE) + extra, 1.0))
    return [rates.Counts(int(f), per_window) for f in failures]


def total(units: Sequence[rates.Counts]) -> rates.Counts:
    return rates.Counts(sum(u.failures for u in units), sum(u.requests for u in units))


def new_test(
    base: Sequence[rates.Counts], current: Sequence[rates.Counts], totals: rates.Counts
) -> stats.Estimate | None:
    return rates.rate_test(base, current, totals=totals, alpha=Q, power=0.8)


def trial(rng: np.random.Generator, mode: str, endpoint: str, extra: float, test: Test) -> Outcome | None:
    kind, _, size = mode.partition(":")
    current = windows(rng, endpoint, extra)
    if kind == "history":
        base = [total(windows(rng, endpoint, 0.0)) for _ in range(int(size))]
    else:
        base = windows(rng, endpoint, 0.0)
    estimate = test(base, current, total(current))
    if estimate is None:
        return None
    others = rng.random(FAMILY - 1)
    adjusted = stats.benjamini_hochberg([estimate.p_up, *others])[0]
    blocked = adjusted < Q and estimate.low > rates.smallest_change(estimate, MIN_POINTS)
    truth = 100 * extra  # the expected rates differ by the added points (bursts alike in both arms)
    return Outcome(blocked, estimate.low <= truth <= estimate.high, estimate.high - estimate.low <= 0)


def table(trials: int, test: Test, seed: int = 13) -> list[str]:
    """Markdown rows: per endpoint and mode, A/A blocking, power per effect, coverage, zero-width intervals."""
    rows = []
    for e, endpoint in enumerate(ENDPOINTS):
        for m, mode in enumerate(MODES):
            cells = [endpoint, mode]
            covered = zero = count = 0
            for k, extra in enumerate(EFFECTS[endpoint]):
                rng = np.random.default_rng([seed, e, m, k])
                outcomes = [o for o in (trial(rng, mode, endpoint, extra, test) for _ in range(trials)) if o]
                cells.append(f"{100 * sum(o.blocked for o in outcomes) / max(len(outcomes), 1):.2f} %")
                covered += sum(o.covered for o in outcomes)
                zero += sum(o.zero_width for o in outcomes)
                count += len(outcomes)
            cells += [f"{100 * covered / max(count, 1):.1f} %", str(zero)]
            rows.append("| " + " | ".join(cells) + " |")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=1_500, help="trials per endpoint, mode and effect")
    args = parser.parse_args()
    print("| endpoint | mode | A/A blocking | power, 1st effect | power, 2nd effect | coverage | zero-width |")
    print("|---|---|--:|--:|--:|--:|--:|")
    began = time.perf_counter()
    for row in table(args.trials, new_test):
        print(row, flush=True)
    effects = "; ".join(f"{k}: +{100 * v[1]:g} / +{100 * v[2]:g} points" for k, v in EFFECTS.items())
    print(f"\n(effects {effects}; {time.perf_counter() - began:.0f} s)")


if __name__ == "__main__":
    sys.exit(main())
