"""The verdict rule of docs/STATISTICS.md: an estimate and its report-wide adjusted p-values in, a verdict out.

Pure; ``compare.compare_runs`` calls ``decide`` for every test of a report.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ci_perf.analysis import rates, stats
from ci_perf.config import Comparison

if TYPE_CHECKING:
    from ci_perf.analysis.compare import MetricComparison
    from ci_perf.results import Stats

# A quantile is judged only when every run compared has this many requests beyond it: the count beyond
# the true quantile is binomial, and like any binomial it is near normal only from about 10 on (fewer:
# a p99 from 300 requests is the 3rd-slowest request, skewed far beyond what a t test allows for).
MIN_TAIL_REQUESTS = 10
QUANTILES = {"p50": 0.5, "p95": 0.95, "p99": 0.99}


def sparse_tail(metric: str, runs: Sequence[Stats]) -> str:
    """Why a quantile is shown but not judged — too few requests beyond it in one of the ``runs`` compared
    (``MIN_TAIL_REQUESTS``) — or "" when it may be judged (any other metric: always)."""
    quantile = QUANTILES.get(metric)
    if quantile is None or not runs:
        return ""
    fewest = min(run.requests for run in runs)
    beyond = fewest * (1 - quantile)
    if beyond >= MIN_TAIL_REQUESTS:
        return ""
    needed = math.ceil(MIN_TAIL_REQUESTS / (1 - quantile))
    return (
        f"{fewest} requests in the smallest run put {beyond:.0f} beyond the {metric}, "
        f"too few for a test ({needed} requests give {MIN_TAIL_REQUESTS})"
    )


@dataclass(frozen=True)
class Rule:
    """What the verdict rule found for one estimate (see ``find``)."""

    worse: bool
    better: bool
    settled: bool  # the interval lies inside ± the smallest change worth a verdict
    mde: float  # the true effect this rule calls a regression with probability ``power`` (test scale)
    needed: float  # × the requests that would narrow the interval to within the smallest change
    wanted: str  # the smallest change worth a verdict, in words
    why: str = ""  # why it is not settled


def decide(
    shown: MetricComparison,
    estimate: stats.Estimate | None,
    *,
    note: str,
    adjusted: tuple[float, float] | None,
    settings: Comparison,
    unreliable: list[str],
    sampling_limited: bool = False,
    family: int = 1,
) -> MetricComparison:
    """The verdict rule of docs/STATISTICS.md. ``sampling_limited``: the test's noise is sampling noise
    only (duet), so the note can say how many more requests would settle it. ``family``: the number of
    tests each Benjamini-Hochberg family holds (the MDE is the power of the rule actually applied).
    ``note``: "skip" (shown, never judged), "no-baseline", or empty."""
    if note == "skip":
        return shown
    if note == "no-baseline":
        return shown.model_copy(update={"verdict": "no-baseline"})
    if estimate is None:
        return shown.model_copy(update={"verdict": "inconclusive", "note": "not enough data for a test"})
    scale = (lambda x: x) if shown.scale == "points" else (lambda x: 100 * math.expm1(x))
    up, down = adjusted or (1.0, 1.0)
    increased = estimate.effect >= 0
    rule = find(
        shown,
        estimate,
        up_significant=up < settings.q,
        down_significant=down < settings.q,
        settings=settings,
        family=family,
    )
    update: dict[str, object] = {
        "effect": scale(estimate.effect),
        "ci_low": scale(estimate.low),
        "ci_high": scale(estimate.high),
        "p_value": estimate.p_up if increased else estimate.p_down,
        "p_adjusted": up if increased else down,
        "mde": scale(rule.mde),
        "se": estimate.se,  # what confirm runs pool (analysis.confirm): the interval may be a t on few df
        "df": estimate.df if math.isfinite(estimate.df) else None,
    }
    if unreliable and (rule.worse or rule.better):
        update |= {"verdict": "inconclusive", "note": "the run was unreliable: " + "; ".join(unreliable)}
    elif rule.worse:
        update["verdict"] = "regression"
    elif rule.better:
        update["verdict"] = "improvement"
    elif not rule.settled:
        note = rule.why
        if sampling_limited and math.isfinite(rule.needed):
            note += f"; about {math.ceil(rule.needed)}× the requests (users × duration) would settle it"
        update |= {"verdict": "inconclusive", "note": note}
    else:
        update["verdict"] = "unchanged"
    return shown.model_copy(update=update)


def find(
    shown: MetricComparison,
    estimate: stats.Estimate,
    *,
    up_significant: bool,
    down_significant: bool,
    settings: Comparison,
    family: int,
) -> Rule:
    """Significant (Benjamini-Hochberg) *and* an estimated change beyond the smallest worth a verdict (and, for
    latency, ``min_abs_ms``) — the magnitude applies to the estimate, as Otava's ``min_magnitude``, not to the
    interval's far bound; ``unchanged`` only when the whole interval lies within that smallest change."""
    points = shown.scale == "points"
    bound = (
        rates.smallest_change(estimate, settings.min_error_rate_points)
        if points
        else math.log1p(settings.min_effect_percent / 100)
    )
    wanted = f"{bound:.2g} points" if points else f"{settings.min_effect_percent:g} %"
    floor = 0.0
    large = points or abs((shown.current or 0.0) - (shown.baseline or 0.0)) > settings.min_abs_ms
    worse = up_significant and large and estimate.effect > bound
    better = down_significant and large and estimate.effect < -bound
    if not points and shown.baseline:
        floor = math.log1p(settings.min_abs_ms / shown.baseline)
    # at least the test's own MDE (the error-rate test's includes its floor of extra failures)
    mde = max(
        stats.rule_mde(
            estimate.se, estimate.df, q=settings.q, family=family, power=settings.power, bound=bound, floor=floor
        ),
        estimate.mde,
    )
    half = (estimate.high - estimate.low) / 2
    inside = -bound < estimate.low and estimate.high < bound
    return Rule(
        worse=worse,
        better=better,
        # a count test's interval is zero-width without failures: its own MDE (≥ 1 request's worth) must fit too
        settled=inside and (not points or estimate.mde <= bound),
        mde=mde,
        needed=(half / bound) ** 2 if bound > 0 else math.inf,
        wanted=wanted,
        why=f"too few requests to rule out a {wanted} change"
        if inside
        else f"the interval reaches beyond ±{wanted}: no verdict either way",
    )
