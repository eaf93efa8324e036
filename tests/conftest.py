"""Shared fixtures: the real demo service on a free loopback port, and synthetic results.

Also the suite's markers: a test's folder says how fast it is, and the folder is its marker.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from ci_perf import sketches
from ci_perf.results import CollectedEndpointWindow, CollectedRun, CpuSample, ErrorCount

TESTS = Path(__file__).parent
# folder → marker (registered in pyproject.toml): `pytest -m unit` is the fast suite
SPEEDS = ("unit", "live", "container", "compat")


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects by marker
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test by its folder; a test outside those folders is an error, never unmarked."""
    for item in items:
        folder = item.path.relative_to(TESTS).parts[0] if item.path.is_relative_to(TESTS) else None
        if folder not in SPEEDS:
            folders = ", ".join(f"tests/{speed}/" for speed in SPEEDS)
            message = f"{item.nodeid}: every test lives in one of {folders} (its folder is its marker)"
            raise pytest.UsageError(message)
        item.add_marker(folder)


@dataclass
class DemoService:
    url: str
    process: subprocess.Popen[str]

    def stats(self) -> dict[str, object]:
        result: dict[str, object] = httpx.get(f"{self.url}/__stats", timeout=5).json()
        return result

    def total(self) -> int:
        return int(self.stats()["total"])  # type: ignore[call-overload]

    def set_knobs(self, knobs: dict[str, dict[str, float]]) -> None:
        httpx.post(f"{self.url}/__knobs", json=knobs, timeout=5).raise_for_status()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=5)
        if self.process.stdout is not None:
            self.process.stdout.close()


def start_demo_service(knobs: dict[str, dict[str, float]] | None = None, *, host: str = "127.0.0.1") -> DemoService:
    """The demo service on a free port of ``host`` (loopback unless a test needs another local address)."""
    command = [sys.executable, "-m", "ci_perf.demo.service", "--host", host, "--port", "0"]
    command += ["--knobs", json.dumps(knobs or {})]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    line = process.stdout.readline()
    assert "listening on " in line, line
    return DemoService(url=line.rsplit("listening on ", 1)[1].strip(), process=process)


@pytest.fixture(scope="session")
def demo() -> Iterator[DemoService]:
    service = start_demo_service({"GET /api/products": {"latency_ms": 2, "jitter_ms": 0.5}})
    yield service
    service.stop()


@pytest.fixture
def fresh_demo() -> Iterator[DemoService]:
    """A service of the test's own, for tests that change knobs or kill it."""
    service = start_demo_service()
    yield service
    service.stop()


def collected_run(
    *,
    endpoints: dict[str, list[float]],
    window_s: float = 1.0,
    start: float = 1_000.0,
    windows: int = 10,
    failures: dict[str, int] | None = None,
    cpu_percent: float = 20.0,
) -> CollectedRun:
    """A synthetic collector output: each endpoint gets the same latencies in every window."""
    parts = []
    for name, latencies in endpoints.items():
        for index in range(windows):
            window_start = start + index * window_s
            failed = (failures or {}).get(name, 0)
            parts.append(
                CollectedEndpointWindow(
                    endpoint=name,
                    start=window_start,
                    requests=len(latencies),
                    failures=failed,
                    latency=sketches.of_values(latencies),
                    errors=[ErrorCount(message="HTTPError: 500 Server Error", count=failed)] if failed else [],
                    first_start=window_start,
                    last_end=window_start + window_s,
                )
            )
    return CollectedRun(
        locust_version="2.47.0",
        window_s=window_s,
        windows=parts,
        cpu=[CpuSample(process="locust", at=start + i, percent=cpu_percent) for i in range(windows)],
        peak_users=10,
    )


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path
