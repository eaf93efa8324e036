"""Summarized runs built from synthetic collector output, for tests that need a ``RunResult``."""

from __future__ import annotations

import numpy as np

from ci_perf.analysis.summarize import summarize_run
from ci_perf.config import LoadSettings
from ci_perf.results import RunResult
from tests.conftest import collected_run

RECORDED_LOAD = LoadSettings(users=10, duration=10, warmup=2)
JUDGED_LOAD = LoadSettings(users=10, duration=10, warmup=0)


def recorded_run(
    *, endpoints: tuple[str, ...] = ("GET /a",), branch: str = "main", start: float = 1_000.0
) -> RunResult:
    """A run as a store records it: every request 5 ms, on ``branch`` at commit ``ff…f``."""
    collected = collected_run(endpoints={e: [5.0] for e in endpoints}, start=start)
    return summarize_run(
        collected, load=RECORDED_LOAD, target="http://x", tool_version="t", git_branch=branch, git_sha="f" * 40
    )


def two_endpoint_run(scale: float, *, slow: float = 1.0, start: float = 1_000.0, cpu: float = 20.0) -> RunResult:
    """``GET /fast`` (8–12 ms) and ``GET /slow`` (40–60 ms), all times ``scale``; ``GET /slow`` also ``slow``."""
    collected = collected_run(
        endpoints={
            "GET /fast": [scale * v for v in (8.0, 9.0, 10.0, 11.0, 12.0)] * 40,
            "GET /slow": [scale * slow * v for v in (40.0, 45.0, 50.0, 55.0, 60.0)] * 40,
        },
        start=start,
        cpu_percent=cpu,
    )
    return summarize_run(collected, load=JUDGED_LOAD, target="http://x", tool_version="t")


def noisy_history(n: int, *, cv: float, seed: int = 1) -> list[RunResult]:
    """``n`` two-endpoint runs, oldest first, each scaled by a lognormal run-to-run offset of ``cv``."""
    rng = np.random.default_rng(seed)
    return [two_endpoint_run(float(np.exp(rng.normal(0, cv))), start=1_000.0 + 100 * i) for i in range(n)]


def commit_sha(i: int) -> str:
    """A recognisable 40-hex sha for the i-th recorded run (``01…01``, ``02…02``, …)."""
    return f"{i + 1:02x}" * 20


def main_run(i: int, *, scale: float, slow: float, slow_endpoint: str) -> RunResult:
    """The i-th run recorded on main: ``GET /fast`` (8–12 ms) and ``slow_endpoint`` (40–60 ms, × ``slow``),
    all times ``scale``, at commit ``commit_sha(i)``."""
    collected = collected_run(
        endpoints={
            "GET /fast": [scale * v for v in (8.0, 9.0, 10.0, 11.0, 12.0)] * 40,
            slow_endpoint: [scale * slow * v for v in (40.0, 45.0, 50.0, 55.0, 60.0)] * 40,
        },
        start=1_000.0 + 100 * i,
    )
    return summarize_run(
        collected, load=JUDGED_LOAD, target="http://x", tool_version="t", git_sha=commit_sha(i), git_branch="main"
    )
