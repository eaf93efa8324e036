"""``python -m ci_perf.loadtest.plugins.probe LOCUSTFILE``: what Locust finds in a locustfile, without a test.

Loads the file as Locust does (its own loader, then the pytest-style loader when there is no User
class) and asks each ``LoadTestShape``'s ``tick()`` once a second with a fake run time, up to
``inspection.SAMPLE_CAP_S``. Prints one ``inspection.PROBE`` line with a ``LocustfileReport``. The
runner starts it in the child's working directory and environment (``locustfiles.probe_locustfile``),
before the run, for ``ci-perf validate`` and for a locustfile with a shape of its own.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from locust.util.load_locustfile import load_locustfile

from ci_perf.loadtest.inspection import PROBE, SAMPLE_CAP_S, LocustfileReport, ShapeSample, describe, where_in
from ci_perf.loadtest.plugins.pytest_style import pytest_users


def sample(shape: Any) -> ShapeSample:
    """Ask ``tick()`` at 0, 1, 2 … seconds (Locust asks about once a second) until it answers None."""
    name = type(shape).__name__
    clock = [0.0]
    shape.get_run_time = lambda: clock[0]
    ticks: list[tuple[float, int, float]] = []
    for second in range(SAMPLE_CAP_S + 1):
        clock[0] = float(second)
        try:
            state = shape.tick()
            if state is None:
                return ShapeSample(name=name, ticks=ticks, ends_at=float(second))
            users, rate = int(state[0]), float(state[1])
        except Exception as exc:  # noqa: BLE001 - any failure means: it cannot be asked outside a test
            return ShapeSample(name=name, ticks=ticks, error=describe(exc, where=where_in(exc.__traceback__, ())))
        if not ticks or ticks[-1][1:] != (users, rate):
            ticks.append((float(second), users, rate))
    return ShapeSample(name=name, ticks=ticks)


def probe(path: str) -> LocustfileReport:
    absolute = Path(path).resolve()
    try:
        users, shapes = load_locustfile(str(absolute))
        pytest_style = False
        if not users:
            users = pytest_users(str(absolute))
            pytest_style = bool(users)
    except Exception as exc:  # noqa: BLE001 - the user's module raised on import: that is the report
        return LocustfileReport(error=describe(exc, where=where_in(exc.__traceback__, {absolute})))
    return LocustfileReport(users=sorted(users), shapes=[sample(s) for s in shapes], pytest_style=pytest_style)


def main(argv: list[str]) -> int:
    report = probe(argv[0])
    sys.stdout.flush()
    print(PROBE + report.model_dump_json(), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
