"""The leftover-Locust check sees a test's own Locust left behind, and never another run's on the same machine."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from tests.conftest import DemoService, write
from tests.support.processes import end_locust_left, locust_left

CONFIG = """\
target: {url}
endpoints: [GET /api/products]
load: {{users: 2, spawn_rate: 2, duration: 60s, warmup: 0s, stop_timeout: 1s}}
readiness: {{path: /health, timeout: 10s}}
"""


def start_run(folder: Path, url: str) -> subprocess.Popen[bytes]:
    """A 60-s ``ci-perf run`` writing to ``folder/out``, without a progress line."""
    config = write(folder / "ci-perf.yml", CONFIG.format(url=url))
    command = [sys.executable, "-m", "ci_perf.cli", "run", "--config", str(config), "--out", "out", "--quiet"]
    return subprocess.Popen(command, cwd=folder, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def wait_until_spawned(out: Path) -> None:
    log = out / "locust.log"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not (log.is_file() and "All users spawned" in log.read_text()):
        time.sleep(0.1)
    assert log.is_file()
    assert "All users spawned" in log.read_text()


@pytest.fixture
def two_runs(tmp_path: Path, demo: DemoService) -> Iterator[tuple[subprocess.Popen[bytes], subprocess.Popen[bytes]]]:
    """This test's run (``mine/out``) and another test run's beside it (``other/out``), both under way."""
    runs = (start_run(tmp_path / "mine", demo.url), start_run(tmp_path / "other", demo.url))
    try:
        yield runs
    finally:
        for run in runs:
            run.kill()
            run.wait(timeout=30)
        for folder in ("mine", "other"):
            end_locust_left(tmp_path / folder / "out")


def test_a_locust_left_behind_is_found_and_another_runs_locust_is_not(
    tmp_path: Path, two_runs: tuple[subprocess.Popen[bytes], subprocess.Popen[bytes]]
) -> None:
    mine, _ = two_runs
    for folder in ("mine", "other"):
        wait_until_spawned(tmp_path / folder / "out")
    ours, theirs = locust_left(tmp_path / "mine" / "out"), locust_left(tmp_path / "other" / "out")
    assert ours
    assert theirs
    assert not set(ours) & set(theirs)
    mine.kill()  # ci-perf gets no chance to end its Locust: it is left behind, as a bug would leave it
    mine.wait(timeout=30)
    left = locust_left(tmp_path / "mine" / "out")
    assert left == ours
    descendants = {p.pid for p in psutil.Process().children(recursive=True)}
    assert not set(left) & descendants  # in a session of its own: a look at the test's process tree misses it
    end_locust_left(tmp_path / "mine" / "out")
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and locust_left(tmp_path / "mine" / "out"):
        time.sleep(0.1)
    assert locust_left(tmp_path / "mine" / "out") == []
    assert locust_left(tmp_path / "other" / "out") == theirs  # the other run goes on, untouched
