"""``ci-perf run`` wall time beyond the configured duration (start-up, readiness, stop, analysis).

Two cases, each with 1 and 2 Locust processes, median of ``--repeats``:

* ``zero-code``: the real command against nginx (or the demo service), 5 users without think time.
* ``think-time``: a locustfile whose users think 5–10 s between tasks and sometimes call an endpoint
  that hangs for 60 s (the demo service with a knob), ``stop_timeout: 10s``. Before the measured
  window closed on its own this waited out the think times and the hung requests (up to
  ``stop_timeout``); plain ``locust --headless -t`` on the same file is shown beside it.

Run: ``make bench-wall`` (``--repeats``, ``--duration``, ``--case``).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from _targets import _wait, fast_target

from ci_perf.loadtest.runner import free_port

ZERO_CODE = """\
target: {url}
endpoints: [GET /health]
load: {{users: 5, spawn_rate: 100, duration: {duration}s, warmup: 2s, processes: {processes}, think_time: 0.01s}}
readiness: {{path: /health, timeout: 5s}}
"""

THINK_TIME = """\
target: {url}
locustfile: locustfile.py
load: {{users: 6, spawn_rate: 100, duration: {duration}s, warmup: 2s, processes: {processes}, stop_timeout: 10s}}
readiness: {{path: /health, timeout: 5s}}
"""

LOCUSTFILE = """\
from locust import HttpUser, between, task


class Reader(HttpUser):
    wait_time = between(5, 10)

    @task(3)
    def products(self):
        self.client.get("/api/products")

    @task(1)
    def export(self):
        self.client.get("/api/products/7", name="/api/products/[id]")  # hangs for 60 s
"""


@contextmanager
def hanging_target() -> Iterator[str]:
    """The demo service, its ``GET /api/products/{id}`` hanging for 60 s."""
    port = free_port()
    knobs = '{"GET /api/products/{id}": {"latency_ms": 60000}}'
    command = [sys.executable, "-m", "ci_perf.demo.service", "--port", str(port), "--knobs", knobs]
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait(url + "/health")
        yield url
    finally:
        server.terminate()
        server.wait(timeout=10)


def beyond(command: list[str], *, cwd: Path, duration: int) -> float:
    began = time.perf_counter()
    subprocess.run(command, cwd=cwd, capture_output=True, check=False, timeout=duration + 120)
    return time.perf_counter() - began - duration


def summary(label: str, extra: list[float]) -> None:
    print(
        f"{label}: wall time beyond duration: median {statistics.median(extra):.2f}s "
        f"(min {min(extra):.2f}s, max {max(extra):.2f}s)"
    )


def measure(case: str, url: str, *, folder: Path, duration: int, repeats: int) -> None:
    template = ZERO_CODE if case == "zero-code" else THINK_TIME
    (folder / "locustfile.py").write_text(LOCUSTFILE)
    for processes in (1, 2):
        config = folder / f"{case}-p{processes}.yml"
        config.write_text(template.format(url=url, duration=duration, processes=processes))
        command = [sys.executable, "-m", "ci_perf.cli", "run", "--config", str(config), "--quiet", "--out", "out"]
        summary(
            f"{case}, processes={processes}", [beyond(command, cwd=folder, duration=duration) for _ in range(repeats)]
        )
    if case == "think-time":
        plain = [sys.executable, "-m", "locust", "-f", "locustfile.py", "--headless", "--host", url, "-u", "6"]
        plain += ["-r", "100", "-t", f"{duration}s", "--only-summary"]
        summary(
            "think-time, plain locust --headless -t",
            [beyond(plain, cwd=folder, duration=duration) for _ in range(repeats)],
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--case", choices=("zero-code", "think-time", "both"), default="both")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder_name:
        folder = Path(folder_name)
        print(f"`ci-perf run` with duration {args.duration}s, {args.repeats} repeats")
        if args.case in {"zero-code", "both"}:
            with fast_target() as (url, name):
                print(f"zero-code target: {name}")
                measure("zero-code", url, folder=folder, duration=args.duration, repeats=args.repeats)
        if args.case in {"think-time", "both"}:
            with hanging_target() as url:
                print("think-time target: demo service, GET /api/products/{id} hangs for 60 s")
                measure("think-time", url, folder=folder, duration=args.duration, repeats=args.repeats)


if __name__ == "__main__":
    main()
