"""Collector overhead: throughput of bare Locust vs Locust with the ci-perf collector.

One Locust process (FastHttpUser, no wait) saturates its core against nginx on
loopback, so any per-request cost of the collector shows as lost throughput.
Pairs run in random order; both arms use Locust's own -t and its own request
count, so they differ only by the collector plugin. Reports the median ratio.
Run: ``make bench-overhead`` (``--pairs``, ``--seconds``).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from _targets import fast_target

from ci_perf.loadtest.protocol import PluginSettings
from ci_perf.loadtest.runner import COLLECTOR

LOCUSTFILE = """
from locust import task
from locust.contrib.fasthttp import FastHttpUser


class Hammer(FastHttpUser):
    @task
    def hit(self):
        self.client.get("/health")
"""


def one_run(url: str, locustfile: Path, *, collector: bool, seconds: int, folder: Path) -> float:
    files = f"{COLLECTOR},{locustfile}" if collector else str(locustfile)
    # run_time 0: Locust's -t ends both arms the same way
    settings = PluginSettings(collect_out=folder / "collected.json", window_s=1.0, run_time=0.0)
    env = {**os.environ, **settings.to_env()}
    command = [sys.executable, "-m", "locust", "-f", files, "--headless", "-u", "10", "-r", "100"]
    command += ["-t", f"{seconds}s", "--host", url, "--only-summary", "--json", "--exit-code-on-error", "0"]
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=True)
    stats = json.loads(done.stdout[done.stdout.index("[") :])  # the collector prints a start marker first
    requests = sum(s["num_requests"] for s in stats)
    began = min(s["start_time"] for s in stats)
    ended = max(s["last_request_timestamp"] for s in stats)
    return requests / (ended - began)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=7)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    ratios = []
    with fast_target() as (url, target_name), tempfile.TemporaryDirectory() as folder_name:
        folder = Path(folder_name)
        locustfile = folder / "hammer.py"
        locustfile.write_text(LOCUSTFILE)
        print(f"target: {target_name}; {args.pairs} pairs of {args.seconds}-s runs, 1 Locust process, 10 users")
        for pair in range(1, args.pairs + 1):
            order = [False, True]
            rng.shuffle(order)
            rps = {arm: one_run(url, locustfile, collector=arm, seconds=args.seconds, folder=folder) for arm in order}
            ratio = rps[True] / rps[False]
            ratios.append(ratio)
            print(f"pair {pair}: bare {rps[False]:8.0f} rps  with collector {rps[True]:8.0f} rps  ratio {ratio:.3f}")
    overhead = (1 - statistics.median(ratios)) * 100
    print(f"median throughput ratio {statistics.median(ratios):.3f} -> collector overhead {overhead:.1f} %")
    print(f"(min ratio {min(ratios):.3f}, max {max(ratios):.3f})")


if __name__ == "__main__":
    main()
