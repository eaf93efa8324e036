"""Latency sketches: DDSketch bins at 1 % relative accuracy, as plain data.

The collector records into ``ddsketch.DDSketch`` (fastest per request and
smallest of the libraries measured, see docs/benchmarks.md) and exports its
bins into the frozen ``Sketch`` model. Everything after that — merging windows,
endpoints and workers, and reading quantiles — happens here on the exported
form, with numpy, so that a 10 M-request result is as cheap as a 10-request one.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
from ddsketch import DDSketch
from ddsketch.mapping import LogarithmicMapping
from pydantic import BaseModel, ConfigDict

RELATIVE_ACCURACY = 0.01
_MAPPING = LogarithmicMapping(RELATIVE_ACCURACY)


class Sketch(BaseModel):
    """A mergeable latency distribution in milliseconds (≤ 1 % relative error on quantiles).

    ``bins[i]`` counts the values whose DDSketch key is ``offset + i``; ``zeros``
    counts values too small to have a key (0 ms). ``count``, ``sum``, ``min`` and
    ``max`` are exact.
    """

    model_config = ConfigDict(frozen=True)

    offset: int = 0
    bins: list[int] = []
    zeros: int = 0
    count: int = 0
    sum: float = 0.0
    min: float = 0.0
    max: float = 0.0


EMPTY = Sketch()


def new_recorder() -> DDSketch:
    """The object the collector adds one latency (ms) to per request."""
    return DDSketch(RELATIVE_ACCURACY)


def export(recorder: DDSketch) -> Sketch:
    """Freeze a recorder into plain data, trimming the store's empty padding."""
    store = recorder._store  # noqa: SLF001 - ddsketch exposes no public view of its bins
    bins = [round(b) for b in store.bins]
    first = next((i for i, b in enumerate(bins) if b), len(bins))
    last = len(bins) - next((i for i, b in enumerate(reversed(bins)) if b), 0)
    count = round(recorder.count)
    return Sketch(
        offset=store.offset + first,
        bins=bins[first:last],
        zeros=count - sum(bins),
        count=count,
        sum=float(recorder.sum),
        min=float(recorder._min) if count else 0.0,  # noqa: SLF001 - exact min is not public
        max=float(recorder._max) if count else 0.0,  # noqa: SLF001 - exact max is not public
    )


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


def quantiles(sketch: Sketch, qs: Sequence[float]) -> list[float | None]:
    """Quantiles in ms (None for an empty sketch), DDSketch's rank rule: rank = q·(n−1).

    q = 1 returns the exact max and q = 0 the exact min.
    """
    if sketch.count == 0:
        return [None for _ in qs]
    cumulative = np.cumsum(np.asarray(sketch.bins, dtype=np.int64)) + sketch.zeros
    out: list[float | None] = []
    for q in qs:
        if q >= 1:
            out.append(sketch.max)
            continue
        if q <= 0:
            out.append(sketch.min)
            continue
        rank = q * (sketch.count - 1)
        if rank < sketch.zeros:
            out.append(0.0)
            continue
        index = int(np.searchsorted(cumulative, rank, side="right"))
        value = _MAPPING.value(sketch.offset + min(index, len(sketch.bins) - 1))
        out.append(min(max(value, sketch.min), sketch.max))
    return out


def quantile(sketch: Sketch, q: float) -> float | None:
    return quantiles(sketch, [q])[0]
