from __future__ import annotations

import random

import pytest
from ddsketch import DDSketch
from ddsketch.mapping import LogarithmicMapping

from ci_perf import sketches


def _recorded(values: list[float]) -> sketches.Sketch:
    return sketches.of_values(values)


def test_keys_and_quantiles_agree_with_the_ddsketch_library() -> None:
    rng = random.Random(11)
    values = [rng.lognormvariate(2, 1.2) for _ in range(5_000)] + [1.0, 2.0, 0.5, 1e-3, 1e4]
    mapping = LogarithmicMapping(sketches.RELATIVE_ACCURACY)
    assert all(sketches.key_of(v) == mapping.key(v) for v in values)
    library = DDSketch(sketches.RELATIVE_ACCURACY)
    for value in values:
        library.add(value)
    ours = _recorded(values)
    for q in (0.01, 0.5, 0.9, 0.95, 0.99, 0.999):
        assert sketches.quantile(ours, q) == pytest.approx(library.get_quantile_value(q), rel=1e-12)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_quantiles_are_within_one_percent_of_the_exact_values(seed: int) -> None:
    rng = random.Random(seed)
    values = [rng.lognormvariate(3, 0.8) for _ in range(20_000)]
    exact = sorted(values)
    sketch = _recorded(values)
    for q in (0.5, 0.9, 0.95, 0.99, 0.999):
        true = exact[int(q * (len(exact) - 1))]
        estimate = sketches.quantile(sketch, q)
        assert estimate is not None
        assert abs(estimate - true) / true <= 0.01


def test_merging_equals_recording_everything_in_one_sketch() -> None:
    rng = random.Random(7)
    parts = [[rng.expovariate(1 / 30) for _ in range(1_000)] for _ in range(5)]
    merged = sketches.merge(_recorded(p) for p in parts)
    whole = _recorded([v for p in parts for v in p])
    assert merged.count == whole.count == 5_000
    assert merged.sum == pytest.approx(whole.sum)
    assert merged.min == whole.min
    assert merged.max == whole.max
    assert sketches.quantiles(merged, [0.5, 0.95, 0.99]) == sketches.quantiles(whole, [0.5, 0.95, 0.99])


def test_zero_latencies_are_counted_not_lost() -> None:
    sketch = _recorded([0.0, 0.0, 5.0, 10.0])
    assert sketch.count == 4
    assert sketch.zeros == 2
    assert sketches.quantile(sketch, 0.25) == 0.0
    assert sketches.quantile(sketch, 1.0) == 10.0


def test_an_empty_sketch_has_no_quantiles() -> None:
    assert sketches.quantiles(sketches.EMPTY, [0.5, 0.99]) == [None, None]
    assert sketches.merge([]) == sketches.EMPTY


def test_export_survives_a_json_round_trip() -> None:
    sketch = _recorded([1.0, 2.0, 3.0, 400.0])
    assert sketches.Sketch.model_validate_json(sketch.model_dump_json()) == sketch
