"""Latency sketches: DDSketch bins at 1 % relative accuracy, as plain data.

The collector records with DDSketch's logarithmic key mapping (``ddsketch``
beat HdrHistogram on speed and memory, see docs/benchmarks.md) into sparse
counts, exported into the frozen ``Sketch`` model. Everything after that —
merging windows, endpoints and workers, and reading quantiles — happens here on
the exported form, with numpy, so that a 10 M-request result is as cheap as a
10-request one.

Quantiles are read *within* a bucket (``quantile_rows``): a bucket's values are taken as spread
evenly on the log scale between its bounds, and the quantile's rank picks its place among them.
DDSketch's own rule returns one representative value per bucket, so a ratio of two quantiles
moved in steps of ~2 % (one bucket) and an effect near the 5 % rule was decided by bucket edges
(issue 13, item 9). The estimate stays inside the bucket that holds the true value (≤ 2 % off in
the worst case, all of a bucket's values at one edge; ~0.1 % for smooth latency distributions).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import numpy as np
from ddsketch.mapping import LogarithmicMapping
from numpy.typing import NDArray

from ci_perf.models import Frozen

RELATIVE_ACCURACY = 0.01
_MAPPING = LogarithmicMapping(RELATIVE_ACCURACY)
# a key's value (DDSketch's representative) × this is the bucket's lower bound; the upper is γ × the lower
_LOWER_OF_VALUE = (1 + _MAPPING.gamma) / (2 * _MAPPING.gamma)
_LOG_GAMMA = math.log(_MAPPING.gamma)


class Sketch(Frozen):
    """A mergeable latency distribution in milliseconds (1 %-accuracy buckets; quantiles: ``quantile_rows``).

    ``bins[i]`` counts the values whose DDSketch key is ``offset + i``; ``zeros``
    counts values too small to have a key (0 ms). ``count``, ``sum``, ``min`` and
    ``max`` are exact.
    """

    offset: int = 0
    bins: list[int] = []
    zeros: int = 0
    count: int = 0
    sum: float = 0.0
    min: float = 0.0
    max: float = 0.0


EMPTY = Sketch()


# The collector computes keys inline (a method chain per request costs ~0.6 µs, measured);
# ``key_of`` is the same expression as ddsketch's LogarithmicMapping.key, and a test keeps them equal.
KEY_MULTIPLIER: float = _MAPPING._multiplier  # noqa: SLF001 - the mapping's own constant
SMALLEST_KEYED: float = _MAPPING.min_possible


def key_of(value: float) -> int:
    """DDSketch key of a positive value (values ≤ ``SMALLEST_KEYED`` count as zeros)."""
    return math.ceil(math.log(value, 2) * KEY_MULTIPLIER)  # noqa: FURB163 - bit-identical to ddsketch


def from_counts(counts: dict[int, int], *, zeros: int, total: float, low: float, high: float) -> Sketch:
    """A ``Sketch`` from sparse key counts as the collector records them."""
    count = zeros + sum(counts.values())
    if not counts:
        return Sketch(zeros=zeros, count=count, sum=total, min=low if count else 0.0, max=high if count else 0.0)
    first, last = min(counts), max(counts)
    bins = [0] * (last - first + 1)
    for key, n in counts.items():
        bins[key - first] = n
    return Sketch(offset=first, bins=bins, zeros=zeros, count=count, sum=total, min=low, max=high)


def of_values(values: Iterable[float]) -> Sketch:
    """A sketch of ``values`` (for tests and benchmarks; the collector records inline)."""
    counts: dict[int, int] = {}
    zeros = 0
    total, low, high = 0.0, math.inf, -math.inf
    for value in values:
        if value > SMALLEST_KEYED:
            key = key_of(value)
            counts[key] = counts.get(key, 0) + 1
        else:
            zeros += 1
        total += value
        low, high = min(low, value), max(high, value)
    return from_counts(counts, zeros=zeros, total=total, low=low, high=high)


def merge(sketches: Iterable[Sketch]) -> Sketch:
    """One sketch holding every value of ``sketches`` (exactly the sum of their bins)."""
    parts = [s for s in sketches if s.count]
    if not parts:
        return EMPTY
    if len(parts) == 1:
        return parts[0]
    with_bins = [s for s in parts if s.bins]
    offset = min((s.offset for s in with_bins), default=0)
    end = max((s.offset + len(s.bins) for s in with_bins), default=0)
    total = np.zeros(end - offset, dtype=np.int64)
    for s in with_bins:
        start = s.offset - offset
        total[start : start + len(s.bins)] += np.asarray(s.bins, dtype=np.int64)
    return Sketch(
        offset=offset,
        bins=total.tolist(),
        zeros=sum(s.zeros for s in parts),
        count=sum(s.count for s in parts),
        sum=sum(s.sum for s in parts),
        min=min(s.min for s in parts),
        max=max(s.max for s in parts),
    )


def bucket_values(offset: int, width: int) -> NDArray[np.float64]:
    """The value each column of a counts row stands for: 0 for column 0 (zeros), DDSketch's key value after."""
    values = np.array([_MAPPING.value(offset + i) for i in range(width - 1)], dtype=float)
    return np.concatenate([[0.0], values])


def _order_statistics(
    bins: NDArray[np.float64], cumulative: NDArray[np.float64], rank: NDArray[np.float64], values: NDArray[np.float64]
) -> NDArray[np.float64]:
    """The value of the ``rank``-th smallest (0-based) of each row, its bucket's values spread evenly in log."""
    index = (cumulative > rank[:, None]).argmax(axis=1)
    rows = np.arange(len(rank))
    count = bins[rows, index]
    before = cumulative[rows, index] - count
    with np.errstate(invalid="ignore", divide="ignore"):
        position = np.clip((rank - before + 0.5) / count, 0.0, 1.0)
    out: NDArray[np.float64] = values[index] * _LOWER_OF_VALUE * np.exp(position * _LOG_GAMMA)
    out[index == 0] = 0.0  # the zeros column
    return out


def quantile_rows(bins: NDArray[np.float64], q: float, values: NDArray[np.float64]) -> NDArray[np.float64]:
    """Quantile ``q`` of each row of counts (column 0 zeros, the rest keys, ``bucket_values``); NaN for empty rows.

    DDSketch's rank rule (the order statistic of rank ⌊q·(n − 1)⌋), read within its bucket: the bucket's
    values are placed evenly on the log scale between its bounds, and the one of that rank is returned.
    """
    bins = np.asarray(bins, dtype=float)
    cumulative = np.cumsum(bins, axis=1)
    total = cumulative[:, -1]
    out = _order_statistics(bins, cumulative, np.floor(np.clip(q * (total - 1), 0.0, None)), values)
    out[total <= 0] = np.nan
    return out


def quantiles(sketch: Sketch, qs: Sequence[float]) -> list[float | None]:
    """Quantiles in ms (None for an empty sketch), interpolated within a bucket (``quantile_rows``).

    q = 1 returns the exact max and q = 0 the exact min; every value is kept within [min, max].
    """
    if sketch.count == 0:
        return [None for _ in qs]
    row = np.array([[sketch.zeros, *sketch.bins]], dtype=float)
    values = bucket_values(sketch.offset, row.shape[1])
    out: list[float | None] = []
    for q in qs:
        if q >= 1:
            out.append(sketch.max)
        elif q <= 0:
            out.append(sketch.min)
        else:
            out.append(min(max(float(quantile_rows(row, q, values)[0]), sketch.min), sketch.max))
    return out


def quantile(sketch: Sketch, q: float) -> float | None:
    return quantiles(sketch, [q])[0]


# the share of requests at each end that the robust mean pulls in to the quantile there (issue 13, item 5)
WINSORISED_SHARE = 0.05


def winsorised_mean_rows(
    bins: NDArray[np.float64], values: NDArray[np.float64], share: float = WINSORISED_SHARE
) -> NDArray[np.float64]:
    """The winsorised mean of each row of counts (as ``quantile_rows``); NaN for empty rows.

    The lowest and highest ``share`` of the requests count as the quantiles at ``share`` and
    1 − ``share``; the rest at their bucket's value (the bucket's log-uniform mean, to 0.01 %). One
    request a thousand times slower than the rest moves the raw mean by a share of its weight; the
    winsorised mean only by what it moves the 95th percentile.
    """
    bins = np.asarray(bins, dtype=float)
    low = quantile_rows(bins, share, values)
    high = quantile_rows(bins, 1 - share, values)
    total = bins.sum(axis=1)
    with np.errstate(invalid="ignore"):
        clipped = np.clip(values[None, :], low[:, None], high[:, None])
    with np.errstate(invalid="ignore", divide="ignore"):
        out: NDArray[np.float64] = (bins * clipped).sum(axis=1) / total
    out[total <= 0] = np.nan
    return out


def winsorised_mean(sketch: Sketch, share: float = WINSORISED_SHARE) -> float | None:
    """The mean with the lowest and highest ``share`` of values pulled in to the quantiles there (None if empty)."""
    if sketch.count == 0:
        return None
    row = np.array([[sketch.zeros, *sketch.bins]], dtype=float)
    return float(winsorised_mean_rows(row, bucket_values(sketch.offset, row.shape[1]), share)[0])
