"""The demo service's simulated work: a knob's time as own code, queries and an external call (issue 14, item 6)."""

from __future__ import annotations

import pytest

from ci_perf.demo.backend import Knob, draw_work
from ci_perf.demo.service import DEFAULT_KNOBS

ORDERS = Knob(latency_ms=25, queries=3, query_ms=2.5, external_ms=8)


def test_the_parts_of_a_request_add_up_to_its_latency() -> None:
    work = draw_work(ORDERS)
    assert work.queries_s == pytest.approx((0.0025,) * 3)
    assert work.external_s == pytest.approx(0.008)
    assert work.own_s + sum(work.queries_s) + (work.external_s or 0) == pytest.approx(0.025)


def test_n_plus_one_multiplies_the_queries_and_adds_their_time() -> None:
    work = draw_work(ORDERS.model_copy(update={"n_plus_one": 2}))
    assert len(work.queries_s) == 6
    assert work.own_s + sum(work.queries_s) + (work.external_s or 0) == pytest.approx(0.025 + 3 * 0.0025)


def test_a_route_without_queries_or_calls_only_spends_its_own_time() -> None:
    work = draw_work(Knob(latency_ms=6))
    assert work.own_s == pytest.approx(0.006)
    assert (work.queries_s, work.external_s) == ((), None)


def test_queries_longer_than_the_latency_leave_no_negative_own_time() -> None:
    work = draw_work(Knob(latency_ms=1, queries=2, query_ms=5))
    assert work.own_s == 0.0
    assert sum(work.queries_s) == pytest.approx(0.010)


@pytest.mark.parametrize("route", list(DEFAULT_KNOBS))
def test_the_default_routes_keep_their_latency_with_jitter_around_it(route: str) -> None:
    knob = DEFAULT_KNOBS[route]
    totals = [sum((w.own_s, *w.queries_s, w.external_s or 0)) * 1000 for w in (draw_work(knob) for _ in range(400))]
    spread = knob.jitter_ms + knob.queries * knob.query_jitter_ms + knob.external_jitter_ms
    assert knob.latency_ms - spread - 1e-9 <= min(totals) <= max(totals) <= knob.latency_ms + spread + 1e-9
    assert sum(totals) / len(totals) == pytest.approx(knob.latency_ms, abs=spread / 4 + 1e-9)
